"""The Docker Engine API's swarm subset, served by swarmpyd so the docker CLI and docker-py drive swarmpy.

Theory of operation
-------------------
One model, two doors. The HTTP handlers here own only the Engine API's shape: paths, query strings,
JSON, status codes and docker's wording. Every decision about the swarm (validation, defaults, names,
versions, filters the control API knows) is made by the same code the gRPC door uses: the daemon's
local-node methods (init, join, leave, info) and the Control servicer, called in-process through
`control_call.call_control`. JSON <-> proto conversion lives in `convert/` (to_json.py and
from_json.py), which the swarmpy CLI shares for its own `inspect` output.

Requests for anything that is not a swarm object (containers, images, exec, volumes, events, ...)
are relayed to the local Docker engine's socket byte for byte over pooled connections (`relay.py`, the
listeners' front door, a thread per client connection, with `framing.py` finding where messages end), streams and hijacked connections
included, so DOCKER_HOST pointed at swarmpyd is a drop-in for the engine's own socket.

Modules: server.py (the aiohttp application, versions, errors, listeners), system.py (/_ping,
/version, /info), swarm.py, nodes.py, services.py, tasks.py, secrets.py (secrets and configs),
filters.py (docker's filter and boolean syntax), errors.py, keys.py (the application's typed state
keys), control_call.py, relay.py, upstreams.py and framing.py (the front door: threads on blocking
sockets), proxy.py (the engine as swarmpy's own handlers use it).

Importing this package does not import aiohttp (the CLI imports convert/); server.py does.
"""
