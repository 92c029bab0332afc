#!/usr/bin/env bash
# What `make demo` runs (see README, "See it work"): a whole experiment from definition to
# report. It starts the server on a throwaway PostgreSQL that bin/devdb makes and removes (or on
# $DATABASE_URL), creates and starts a three-arm experiment, simulates 50,000 shoppers over the
# last 14 days through the public API, prints `analyze report`, writes the HTML report; then
# runs a bandit (scripts/demo/bandit.yaml) whose traffic follows net revenue, shows its weights
# moving day by day and its report by period; and stops the server and removes its cluster
# whatever happens.
#
# Settings: DEMO_SHOPPERS (50000), DEMO_BANDIT_SHOPPERS (30000; 0 skips the bandit), DEMO_ADDR
# (127.0.0.1:8090, so a `make run` on 8080 can stay).
set -euo pipefail
cd "$(dirname "$0")/.."

out=.xsell/demo
scenario=scripts/demo/scenario.yaml
addr=${DEMO_ADDR:-127.0.0.1:8090}
shoppers=${DEMO_SHOPPERS:-50000}
bandit_shoppers=${DEMO_BANDIT_SHOPPERS:-30000}
key=cross-sell-demo
bandit_key=cross-sell-bandit
bandit_report=$out/bandit.html
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
trap 'exit 130' INT TERM

say "Starting the server on $addr with $where"
XSELL_ADDR=$addr XSELL_LOG_LEVEL=warn bin/server >"$log" 2>&1 &
server=$!

say "Creating experiment $key and simulating $shoppers shoppers over the last 14 days"
bin/simulate --server "http://$addr" --scenario "$scenario" --experiment "$key" --create \
	--wait-ready 90s --shoppers "$shoppers"

say "analyze report --experiment $key"
bin/analyze report --experiment "$key"
bin/analyze report --experiment "$key" --format html --out "$report"

if [ "$bandit_shoppers" -gt 0 ]; then
	say "A bandit: experiment $bandit_key moves its traffic towards net revenue; simulating $bandit_shoppers shoppers"
	bin/simulate --server "http://$addr" --scenario scripts/demo/bandit.yaml --experiment "$bandit_key" --create \
		--shoppers "$bandit_shoppers"
	say "analyze report --experiment $bandit_key (compared within the bandit's periods)"
	bin/analyze report --experiment "$bandit_key"
	bin/analyze report --experiment "$bandit_key" --format html --out "$bandit_report"
fi

say "Stopping the server"
stop_server
printf 'done in %ds. The HTML report, with charts: %s\n' "$SECONDS" "$(cd "$(dirname "$report")" && pwd)/$(basename "$report")"
if [ "$bandit_shoppers" -gt 0 ]; then
	printf "The bandit's HTML report: %s\n" "$(cd "$(dirname "$bandit_report")" && pwd)/$(basename "$bandit_report")"
fi
printf 'Open it with: xdg-open %s   (server log: %s)\n' "$report" "$log"
