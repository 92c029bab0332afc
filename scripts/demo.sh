#!/usr/bin/env bash
# What `make demo` runs (see README, "See it work"): a whole experiment from definition to
# report. It starts the server on a throwaway PostgreSQL that bin/devdb makes and removes (or on
# $DATABASE_URL), reports the orders of 20,000 earlier shoppers so that the server learns which
# products go together (its complements model), creates and starts a four-arm experiment (the
# fourth a bundle of learned complements), simulates 50,000 shoppers over the last 14 days
# through the public API, prints `analyze report` and `analyze complements`, writes the HTML
# report; runs caps and a budget (scripts/demo/caps.yaml: an offer at every visit that annoys
# frequent shoppers loses to the same offer capped; a budgeted arm runs out on day 10 of 14);
# then holds 10% of shoppers out of every offer (PUT /v1/holdout), runs a bandit
# (scripts/demo/bandit.yaml) whose traffic follows net revenue, shows its weights moving day by
# day and its report by period, and `analyze holdout`; prints the web console's
# address and sign-in key, and stops the server and removes its cluster whatever happens.
#
# Settings: DEMO_SHOPPERS (50000), DEMO_PAST_SHOPPERS (20000: the orders complements are learned
# from), DEMO_BANDIT_SHOPPERS (30000; 0 skips the bandit), DEMO_CAPS_SHOPPERS (8000; 0 skips
# caps and budget), DEMO_ADDR (127.0.0.1:8090, so a
# `make run` on 8080 can stay), DEMO_KEEP: 1 keeps the server (and the console) up until
# Ctrl-C, 0 stops it at once; unset, it is kept when standard input is a terminal, so that a
# script or CI run still ends by itself.
set -euo pipefail
cd "$(dirname "$0")/.."

out=.xsell/demo
scenario=scripts/demo/scenario.yaml
addr=${DEMO_ADDR:-127.0.0.1:8090}
shoppers=${DEMO_SHOPPERS:-50000}
past=${DEMO_PAST_SHOPPERS:-20000}
bandit_shoppers=${DEMO_BANDIT_SHOPPERS:-30000}
caps_shoppers=${DEMO_CAPS_SHOPPERS:-8000}
key=cross-sell-demo
bandit_key=cross-sell-bandit
bandit_report=$out/bandit.html
caps_key=cross-sell-caps
caps_report=$out/caps.html
log=$out/server.log
report=$out/report.html

say() { printf '\n\033[1m== %s\033[0m  (%ds)\n' "$*" "$SECONDS"; }
die() { printf 'demo: %s\n' "$*" >&2; exit 1; }

for b in server simulate analyze devdb; do
	[ -x "bin/$b" ] || die "bin/$b is missing: run it through 'make demo', which builds it"
done
if (exec 3<>"/dev/tcp/${addr%:*}/${addr##*:}") 2>/dev/null; then
	die "something already listens on $addr; set DEMO_ADDR=127.0.0.1:PORT to use another port"
fi

if [ -z "${DATABASE_URL:-}" ]; then
	# A throwaway cluster each run, apart from the one `make run` uses, so the demo always
	# starts from nothing and never touches your data; devdb removes it when the demo ends.
	DEMO_THROWAWAY_DB=1 exec bin/devdb exec -- "$0" "$@"
fi
if [ -n "${DEMO_THROWAWAY_DB:-}" ]; then
	rm -rf "$out"
	where="a throwaway PostgreSQL (removed at the end)"
else
	# A shared database keeps earlier runs: a new experiment key each time.
	key=$key-$(date -u +%Y%m%d%H%M%S)
	bandit_key=$bandit_key-$(date -u +%Y%m%d%H%M%S)
	caps_key=$caps_key-$(date -u +%Y%m%d%H%M%S)
	where="DATABASE_URL"
fi
mkdir -p "$out"

server=
stop_server() {
	if [ -n "$server" ] && kill -0 "$server" 2>/dev/null; then
		# SIGTERM: the server finishes its requests, writes what it queued; devdb removes the throwaway cluster after.
		kill -TERM "$server"
		wait "$server" || true
	fi
	server=
}
on_exit() {
	status=$?
	stop_server
	if [ "$status" -ne 0 ]; then
		printf '\ndemo: failed; the last lines of the server log (%s):\n' "$log" >&2
		tail -n 15 "$log" >&2 || true
	fi
}
trap on_exit EXIT
# Ctrl-C while the demo waits for it at the end is how it is meant to end: not a failure.
waiting=
trap 'if [ -n "$waiting" ]; then exit 0; fi; exit 130' INT TERM

say "Starting the server on $addr with $where"
# Results for the console every 30 s rather than hourly, so that it shows the simulated traffic.
XSELL_ADDR=$addr XSELL_LOG_LEVEL=warn XSELL_RESULTS_REFRESH=30s bin/server >"$log" 2>&1 &
server=$!

say "Learning complements from $past past shoppers, creating experiment $key and simulating $shoppers shoppers over the last 14 days"
bin/simulate --server "http://$addr" --scenario "$scenario" --experiment "$key" --create \
	--wait-ready 90s --shoppers "$shoppers" --learn "$past"

say "analyze report --experiment $key"
bin/analyze report --experiment "$key"
bin/analyze report --experiment "$key" --format html --out "$report"

say "analyze complements: what the server learned (the scenario planted shampoo+conditioner, razor+shaving gel, …)"
bin/analyze complements

if [ "$caps_shoppers" -gt 0 ]; then
	say "Caps and a budget: experiment $caps_key offers a bundle at every visit, capped at two a day, and capped with a budget; simulating $caps_shoppers shoppers who come up to 8 times a day"
	bin/simulate --server "http://$addr" --scenario scripts/demo/caps.yaml --experiment "$caps_key" --create \
		--shoppers "$caps_shoppers"
	say "analyze report --experiment $caps_key (the offer at every visit annoys; the budget ran out on day 10 of 14)"
	bin/analyze report --experiment "$caps_key"
	bin/analyze report --experiment "$caps_key" --format html --out "$caps_report"
fi

if [ "$bandit_shoppers" -gt 0 ]; then
	say "A program holdout: 10% of the shoppers from now on see no offer (PUT /v1/holdout), to measure the whole programme"
	curl -fsS --retry 30 --retry-connrefused --retry-delay 1 -o /dev/null -X PUT -H 'Content-Type: application/json' \
		-H "Authorization: Bearer ${XSELL_ADMIN_KEY:-dev-admin}" -d '{"percent": 10, "seed": "demo-holdout"}' "http://$addr/v1/holdout"
	say "A bandit: experiment $bandit_key moves its traffic towards net revenue; simulating $bandit_shoppers shoppers"
	bin/simulate --server "http://$addr" --scenario scripts/demo/bandit.yaml --experiment "$bandit_key" --create \
		--shoppers "$bandit_shoppers"
	say "analyze report --experiment $bandit_key (compared within the bandit's periods)"
	bin/analyze report --experiment "$bandit_key"
	bin/analyze report --experiment "$bandit_key" --format html --out "$bandit_report"
	say "analyze holdout: everyone else against the held-out 10%, the whole programme's effect per shopper"
	bin/analyze holdout
fi

keep=${DEMO_KEEP:-}
if [ -z "$keep" ]; then
	if [ -t 0 ]; then keep=1; else keep=0; fi
fi
report_path="$(cd "$(dirname "$report")" && pwd)/$(basename "$report")"
printf '\ndone in %ds. The HTML report, with charts: %s   (server log: %s)\n' "$SECONDS" "$report_path" "$log"
if [ "$bandit_shoppers" -gt 0 ]; then
	printf "The bandit's HTML report: %s\n" "$(cd "$(dirname "$bandit_report")" && pwd)/$(basename "$bandit_report")"
fi
if [ "$caps_shoppers" -gt 0 ]; then
	printf "The caps and budget HTML report: %s\n" "$(cd "$(dirname "$caps_report")" && pwd)/$(basename "$caps_report")"
fi
printf '\n\033[1mThe web console: http://%s/console/\033[0m   sign in with the admin key \033[1m%s\033[0m (or dev-analyst to read only)\n' \
	"$addr" "${XSELL_ADMIN_KEY:-dev-admin}"
if [ "$keep" = 1 ]; then
	printf 'The server stays up for the console until you press Ctrl-C (DEMO_KEEP=0 stops it at once).\n'
	waiting=1
	wait "$server" || true
	server=
else
	say "Stopping the server (DEMO_KEEP=1 keeps it up for the console)"
	stop_server
fi
