#!/usr/bin/env bash
# Fully distributed: management components, a key manager, two traffic managers (both
# serving the same event stream from PostgreSQL) and two gateways that list both hubs.
source "$(dirname "$0")/lib.sh"
fresh_databases
start management management-only.toml 19443
start key-manager key-manager.toml 19444
start traffic-manager-1 traffic-manager.toml 19445 TOLLGATE_TRAFFIC_MANAGER__LISTEN=127.0.0.1:19611
start traffic-manager-2 traffic-manager.toml 19446 TOLLGATE_TRAFFIC_MANAGER__LISTEN=127.0.0.1:19612
ready 19443 19444 19445 19446
for i in 1 2; do
  start "gateway-$i" gateway.toml $((19450 + i)) TOLLGATE_GATEWAY__LISTEN=127.0.0.1:$((18280 + i)) \
    TOLLGATE_CLUSTER__EVENT_HUB_URL=http://127.0.0.1:19611,http://127.0.0.1:19612
done
ready 19451 19452
check 19443 Default 18281 18282
finish
