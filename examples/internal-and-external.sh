#!/usr/bin/env bash
# Internal and external gateway environments: each gateway fleet serves only the revisions
# deployed to its own environment.
source "$(dirname "$0")/lib.sh"
fresh_databases
start control-plane control-plane.toml 19443 TOLLGATE_TRAFFIC_MANAGER__LISTEN=127.0.0.1:19611
ready 19443
start gateway-external gateway.toml 19451 TOLLGATE_GATEWAY__LISTEN=127.0.0.1:18281 \
  TOLLGATE_GATEWAY__ENVIRONMENT=Default TOLLGATE_CLUSTER__EVENT_HUB_URL=http://127.0.0.1:19611
start gateway-internal gateway.toml 19452 TOLLGATE_GATEWAY__LISTEN=127.0.0.1:18282 \
  TOLLGATE_GATEWAY__ENVIRONMENT=internal TOLLGATE_CLUSTER__EVENT_HUB_URL=http://127.0.0.1:19611
ready 19451
check 19443 internal 18282
# The internal gateway was not ready before `internal` existed and had a revision; it is now.
ready 19452
check 19443 Default 18281
finish
