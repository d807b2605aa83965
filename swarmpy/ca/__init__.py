"""The swarm's certificate authority, join tokens and mutual-TLS plumbing.

One room per job:
- certs.py          root CA, node keys/CSRs, signing, verification, renewal timing, CA digest
- tokens.py         SWMTKN-1 join tokens: generate, parse, check (constant time), rotate
- join_bootstrap.py the public "join bootstrap" identity that stands in for "no client certificate"
- tls.py            grpc credentials (server, node, joiner) and channel/server options
- authz.py          the interceptor deciding, per RPC, what the caller's certificate allows
- server.py         the CA gRPC service (root CA, issuance against a token, renewal)
- bootstrap.py      the joining side: pin the root from the token, get / renew a certificate
- keystore.py       a node's key, certificate and root CA on disk

How a node joins: bootstrap.fetch_root_ca (raw TLS, root pinned by the token digest) →
bootstrap.request_node_certificate (grpc, verified against the pinned root, bootstrap client identity)
→ CAServicer checks the token and calls the manager's `issue` → keystore.save_node_credentials →
from then on tls.channel_credentials with the node's own certificate.
"""
