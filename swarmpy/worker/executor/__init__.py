"""Executors: how a worker turns tasks into containers. base.py is the contract, docker.py the engine."""
