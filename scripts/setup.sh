#!/usr/bin/env bash
# What `make setup` runs, and what `make run`, `make test` and `make demo` run first: makes sure
# the machine has what the private PostgreSQL cluster needs. It is the only place in xsell that
# installs packages, and it says so before it does.
#
#	scripts/setup.sh            PostgreSQL server binaries (skipped when DATABASE_URL is set)
#	scripts/setup.sh chromium   also Debian's chromium, for the browser tests
#
# As root it installs what is missing with apt-get; otherwise it prints the command to run and
# fails.
set -euo pipefail

want_chromium=
for arg in "$@"; do
	case $arg in
	chromium) want_chromium=1 ;;
	*) printf 'usage: %s [chromium]\n' "$0" >&2; exit 2 ;;
	esac
done

# The same places internal/pgcluster looks: pg_config's bindir, Debian's versioned directories
# (kept out of PATH), then PATH.
have_postgres() {
	local dir
	if dir=$(pg_config --bindir 2>/dev/null) && [ -x "$dir/initdb" ]; then return 0; fi
	for dir in /usr/lib/postgresql/*/bin; do
		if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then return 0; fi
	done
	command -v initdb >/dev/null
}

missing=()
find_missing() {
	missing=()
	if [ -z "${DATABASE_URL:-}" ] && ! have_postgres; then
		missing+=(postgresql)
	fi
	if [ -n "$want_chromium" ] && ! command -v chromium >/dev/null; then
		missing+=(chromium)
	fi
}

find_missing
if [ ${#missing[@]} -gt 0 ]; then
	cmd="apt-get update && apt-get install -y --no-install-recommends ${missing[*]}"
	if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null; then
		printf 'setup: missing: %s. Install it with:\n  sudo sh -c "%s"\nor set DATABASE_URL to a PostgreSQL server you have.\n' "${missing[*]}" "$cmd" >&2
		exit 1
	fi
	# Two clones set up at once (two `make test` on a fresh machine) would both run apt-get,
	# and the second would fail on apt's lock: one setup installs at a time, and the next one
	# looks again for what is still missing once the first is done. DPkg::Lock::Timeout waits
	# for any other apt-get rather than failing at once.
	exec 9>/var/lock/xsell-setup.lock
	flock 9
	find_missing
fi
if [ ${#missing[@]} -gt 0 ]; then
	printf 'setup: installing %s (you are root): %s\n' "${missing[*]}" "$cmd" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get -o DPkg::Lock::Timeout=600 update -qq
	apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${missing[@]}"
fi

# As root, the cluster runs as the postgres user (initdb refuses root); Debian's package makes
# it, a PostgreSQL built by hand may not have.
if [ -z "${DATABASE_URL:-}" ] && [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
	printf 'setup: creating the system user postgres, which runs the private cluster (initdb refuses root)\n' >&2
	useradd --system --home-dir /var/lib/postgresql --shell /usr/sbin/nologin postgres
fi
