#!/usr/bin/env bash
# Two all-in-one nodes on one PostgreSQL: a change made through node A is served by node B.
source "$(dirname "$0")/lib.sh"
fresh_databases
start node-a all-in-one.toml 19443 TOLLGATE_GATEWAY__LISTEN=127.0.0.1:18280 TOLLGATE_TRAFFIC_MANAGER__LISTEN=127.0.0.1:19611
start node-b all-in-one.toml 19444 TOLLGATE_GATEWAY__LISTEN=127.0.0.1:18281 TOLLGATE_TRAFFIC_MANAGER__LISTEN=127.0.0.1:19612
ready 19443 19444
check 19443 Default 18280 18281
finish
