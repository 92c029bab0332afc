-- POST /v1/assign against every running experiment.
--   SHOPPERS=N  returning shoppers are drawn from a pool of N (as checkout sees them);
--   NEW=F       a share F (0..1) of requests is a shopper never seen before, named PREFIX-...;
--               NEW=1 makes every request a new shopper. SHOPPERS=0 means NEW=1.
--   WARM=T      the T threads walk the pool in turn instead of drawing from it, so that a run
--               of at least N requests sees every returning shopper (the warm-up).
--   CART=M      a 3-product "context" in every body, of the products sku-0 … sku-(PRODUCTS-1)
--               (default 1000), for learned strategies: M is "shopper" (shopper k's own cart,
--               one of CARTS carts, default 1000: carts repeat across shoppers and requests),
--               "new" (three products drawn on every request: a cart never seen), "same"
--               (one cart for everyone, as on one product page) or "mixed" (the shopper's own
--               cart, but a never-seen one on a share NEW_CARTS of requests, default 0.2, as
--               when shoppers add to their carts). Without CART, no context.
local pool = tonumber(os.getenv("SHOPPERS") or "10000")
local new = tonumber(os.getenv("NEW") or "0")
local prefix = os.getenv("PREFIX") or "new"
local warm = tonumber(os.getenv("WARM") or "0")
local cart = os.getenv("CART") or ""
local products = tonumber(os.getenv("PRODUCTS") or "1000")
local carts = tonumber(os.getenv("CARTS") or "1000")
local newcarts = tonumber(os.getenv("NEW_CARTS") or "0.2")
if pool == 0 then new = 1 end

local threads = 0
function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

local counter = 0
function init(args)
  math.randomseed(os.time() + (tid or 0) * 7919)
end

-- context is the body's "context" member for shopper number k (nil for a new shopper), or "".
local function context(k)
  local a, b, c
  if cart == "" then
    return ""
  elseif cart == "new" or k == nil or (cart == "mixed" and math.random() < newcarts) then
    a, b, c = math.random(0, products - 1), math.random(0, products - 1), math.random(0, products - 1)
  elseif cart == "same" then
    a, b, c = 17 % products, 311 % products, 743 % products
  else
    local n = k % carts
    a, b, c = (n * 919 + 17) % products, (n * 577 + 311) % products, (n * 131 + 743) % products
  end
  return string.format(',"context":{"products":["sku-%d","sku-%d","sku-%d"]}', a, b, c)
end

request = function()
  counter = counter + 1
  local id, k
  if new >= 1 or (new > 0 and math.random() < new) then
    -- Unique across threads and runs: the thread's number and its own counter.
    id = prefix .. "-" .. (tid or 0) .. "-" .. counter
  else
    if warm > 0 then
      k = ((tid - 1) + warm * (counter - 1)) % pool + 1
    else
      k = math.random(1, pool)
    end
    id = "shopper-" .. k
  end
  local body = string.format(
    '{"shopper_id":"%s","attributes":{"country":"IT","device":"mobile","visits":5}%s}', id, context(k))
  return wrk.format("POST", "/v1/assign", {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer dev-checkout",
  }, body)
end

-- PACE_MS=D: each connection waits D milliseconds after an answer before its next request, so
-- that the handlers are measured at a rate below their capacity (32 connections at 2 ms: some
-- 15,000 requests a second) rather than saturated.
local pace = tonumber(os.getenv("PACE_MS") or "0")
if pace > 0 then
  delay = function() return pace end
end
