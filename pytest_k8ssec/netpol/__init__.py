"""NetworkPolicy reachability: model, policy builders, expected truth tables, probe scripts.

The split follows Kubernetes' own e2e tests (test/e2e/network/netpol): plain data here, API
calls and running probes elsewhere, so the tests read like the seed's steps.
"""
