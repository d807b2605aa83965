"""JSON <-> proto for the Engine API: to_json (objects as docker shows them) and from_json (specs as
clients send them). The only place either conversion is written."""
