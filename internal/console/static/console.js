// xsell console: a little progressive enhancement. Every page works without it.
// In the experiment form, show only the inputs that a variant's strategy type takes.
(function () {
  "use strict";
  function sync(select) {
    var box = select.closest("fieldset.variant");
    if (!box) return;
    var type = select.value;
    box.querySelectorAll("[data-for]").forEach(function (el) {
      var on = el.getAttribute("data-for").split(" ").indexOf(type) >= 0;
      el.hidden = !on;
    });
  }
  document.addEventListener("change", function (e) {
    if (e.target.matches && e.target.matches("select.strategy-type")) sync(e.target);
  });
  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("select.strategy-type").forEach(sync);
    var summary = document.getElementById("problems");
    if (summary) summary.focus();
  });
})();
