#!/usr/bin/env bash
# Starts a throwaway PostgreSQL server for ward's store tests and prints, on
# stdout and alone, the URL to export as WARD_TEST_POSTGRES:
#
#	export WARD_TEST_POSTGRES="$(.ci/postgres.sh)"
#	go test ./internal/store/postgres/
#	.ci/postgres.sh stop
#
# Idempotent: a server it started that still runs is reused. It installs
# PostgreSQL with apt-get when no server binaries are found, runs the server
# as an unprivileged user (postgres refuses to run as root), listens on
# 127.0.0.1 only, on the first free port from WARD_PG_PORT (default 55432),
# with trust authentication and durability off: test data only.
#
# Environment: WARD_PG_DIR (default /tmp/ward-pg) holds the cluster, its
# socket, log and chosen port; WARD_PG_PORT is the first port to try;
# WARD_PG_DURABLE=1 (the benchmark command's setting) keeps fsync and full
# page writes on, with synchronous_commit off.
set -euo pipefail

dir="${WARD_PG_DIR:-/tmp/ward-pg}"
data="$dir/data"
first_port="${WARD_PG_PORT:-55432}"
db=ward
role=ward

log() { echo "postgres.sh: $*" >&2; }

SUDO=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null; then SUDO=sudo; fi

# find_bin sets bin to a directory holding initdb, pg_ctl and postgres.
find_bin() {
	bin=""
	local d
	for d in "$(dirname "$(command -v pg_ctl 2>/dev/null || echo /nonexistent/x)")" \
		$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r) /usr/local/bin /usr/local/pgsql/bin; do
		if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && [ -x "$d/postgres" ]; then
			bin="$d"
			return 0
		fi
	done
	return 1
}

if ! find_bin; then
	log "no PostgreSQL server binaries found; installing postgresql"
	export DEBIAN_FRONTEND=noninteractive
	$SUDO apt-get update -qq >&2
	$SUDO apt-get install -y -qq postgresql >&2
	find_bin || { log "postgresql installed but initdb/pg_ctl not found"; exit 1; }
fi

# The server's user: ourselves, or when root an unprivileged system user.
if [ "$(id -u)" -eq 0 ]; then
	user=postgres
	if ! id "$user" >/dev/null 2>&1; then
		user=ward-pg
		id "$user" >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin "$user"
	fi
	as_user() { runuser -u "$user" -- "$@"; }
	mkdir -p "$dir"
	chown "$user" "$dir"
else
	user="$(id -un)"
	as_user() { "$@"; }
	mkdir -p "$dir"
fi
chmod 700 "$dir"

pg_ctl() { as_user "$bin/pg_ctl" -D "$data" "$@"; }

if [ "${1:-}" = stop ]; then
	if [ -f "$data/PG_VERSION" ] && pg_ctl status >/dev/null 2>&1; then
		pg_ctl stop -m fast -w >&2
	fi
	exit 0
fi

# port_free reports whether nothing listens on 127.0.0.1:$1.
port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

if [ ! -f "$data/PG_VERSION" ]; then
	rm -rf "$data"
	as_user "$bin/initdb" -D "$data" -U "$role" --auth=trust --encoding=UTF8 --no-locale >"$dir/initdb.log" 2>&1 ||
		{ cat "$dir/initdb.log" >&2; exit 1; }
fi

durability="-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
if [ "${WARD_PG_DURABLE:-}" = 1 ]; then
	durability="-c fsync=on -c synchronous_commit=off -c full_page_writes=on"
fi

if pg_ctl status >/dev/null 2>&1; then
	port="$(cat "$dir/port")"
else
	port="$first_port"
	if [ -f "$dir/port" ] && port_free "$(cat "$dir/port")"; then port="$(cat "$dir/port")"; fi
	while ! port_free "$port"; do port=$((port + 1)); done
	echo "$port" >"$dir/port"
	pg_ctl start -w -t 60 -l "$dir/server.log" \
		-o "-c listen_addresses=127.0.0.1 -p $port -k $dir $durability -c max_connections=200" \
		>&2 || { tail -20 "$dir/server.log" >&2; exit 1; }
fi

# psql: the cluster's own, else one on the PATH.
psql="$bin/psql"
[ -x "$psql" ] || psql="$(command -v psql)" || { log "psql not found"; exit 1; }
q() { as_user "$psql" -h "$dir" -p "$port" -U "$role" -d postgres -XAtq -v ON_ERROR_STOP=1 -c "$1"; }
if [ "$(q "SELECT 1 FROM pg_database WHERE datname = '$db'")" != 1 ]; then
	q "CREATE DATABASE $db" >&2
fi

echo "postgres://$role@127.0.0.1:$port/$db?sslmode=disable"
