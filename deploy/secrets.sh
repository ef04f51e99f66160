#!/usr/bin/env bash
# Writes random secrets for docker-compose into deploy/secrets/ (mode 0600, git-ignored) and
# the broker's password file and access list with the daemon's user `gridsentry`; devices are
# added with `gridsentry provision --dir deploy/secrets/provisioned` (one login each).
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p secrets && chmod 0700 secrets
rand() { head -c 24 /dev/urandom | base64 | tr -d '/+=' ; }
for f in influx-password influx-token grafana-password webhook-secret mqtt-password postgres-password; do
  [[ -s secrets/$f ]] || { rand > "secrets/$f"; chmod 0600 "secrets/$f"; }
done
# Cluster mode (deploy/cluster/): the workers' PostgreSQL connection string.
[[ -s secrets/postgres-url ]] || { printf 'host=postgres user=gridsentry dbname=gridsentry password=%s\n' "$(cat secrets/postgres-password)" > secrets/postgres-url; chmod 0600 secrets/postgres-url; }
# mosquitto_passwd comes with the broker image; run it there so nothing is needed on the host.
mkdir -p secrets/provisioned/broker secrets/provisioned/registry
if [[ ! -s secrets/provisioned/broker/passwd ]]; then
  docker run --rm -v "$PWD/secrets:/s" eclipse-mosquitto:2.0.20 sh -c \
    'mosquitto_passwd -b -c /s/provisioned/broker/passwd gridsentry "$(cat /s/mqtt-password)"'
fi
# Until the first `gridsentry provision`: the daemon reads, no device may publish.
[[ -s secrets/provisioned/broker/acl ]] || printf 'user gridsentry\ntopic read gs/v1/#\ntopic write gs/v1/+/+/ota\ntopic write gs/v1/+/+/ota/chunk\n' > secrets/provisioned/broker/acl
touch secrets/provisioned/registry/devices
chmod 0640 secrets/provisioned/broker/passwd secrets/provisioned/broker/acl
# The daemon runs as uid/gid 10001 in its image and refuses world-readable secret files: hand
# its files to that group (needs root; otherwise do it with sudo). InfluxDB and Grafana run as
# their own users and read theirs through compose `secrets:`; they get 0644 copies inside the
# 0750 directory (the directory keeps other host users out).
cp secrets/influx-token secrets/influx-token-shared
chmod 0644 secrets/influx-token-shared secrets/influx-password secrets/grafana-password
chgrp 10001 secrets secrets/webhook-secret secrets/mqtt-password secrets/influx-token secrets/postgres-url 2>/dev/null \
  && chmod 0750 secrets && chmod 0640 secrets/webhook-secret secrets/mqtt-password secrets/influx-token secrets/postgres-url \
  || echo "run as root (or with sudo) so the container's group 10001 can read its secrets" >&2
# Cluster mode's NATS users (deploy/cluster/nats-users.conf): one password per role, the nodes
# read them from nats.env, the relays and workers from their files.
for role in relay worker admin; do
  [[ -s secrets/nats-$role-password ]] || { rand > "secrets/nats-$role-password"; chmod 0600 "secrets/nats-$role-password"; }
done
[[ -s secrets/nats.env ]] || { printf 'RELAY_PASSWORD=%s\nWORKER_PASSWORD=%s\nADMIN_PASSWORD=%s\n' \
  "$(cat secrets/nats-relay-password)" "$(cat secrets/nats-worker-password)" "$(cat secrets/nats-admin-password)" > secrets/nats.env; chmod 0600 secrets/nats.env; }
chgrp 10001 secrets/nats-relay-password secrets/nats-worker-password 2>/dev/null && chmod 0640 secrets/nats-relay-password secrets/nats-worker-password || true
echo "secrets written to deploy/secrets/"
