"""Helpers for tests that run TensorFlow in subprocesses (devices, clusters on localhost)."""

import socket


def free_ports(n):
  """``n`` free TCP ports on localhost, for a TF_CONFIG cluster of worker processes."""
  sockets = [socket.socket() for _ in range(n)]
  for s in sockets:
    s.bind(("localhost", 0))
  ports = [s.getsockname()[1] for s in sockets]
  for s in sockets:
    s.close()
  return ports
