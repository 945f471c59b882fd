#!/usr/bin/env bash
# Control plane, a separate traffic manager (the event hub) and two gateway nodes.
source "$(dirname "$0")/lib.sh"
fresh_databases
start control-plane control-plane-without-traffic-manager.toml 19443
start traffic-manager traffic-manager.toml 19444 TOLLGATE_TRAFFIC_MANAGER__LISTEN=127.0.0.1:19611
ready 19443 19444
for i in 1 2; do
  start "gateway-$i" gateway.toml $((19450 + i)) TOLLGATE_GATEWAY__LISTEN=127.0.0.1:$((18280 + i)) \
    TOLLGATE_CLUSTER__EVENT_HUB_URL=http://127.0.0.1:19611
done
ready 19451 19452
check 19443 Default 18281 18282
finish
