"""Device software: the checkout terminal agent, the temperature-screening kiosk, and the
fleet client both use (enrolment, heartbeats, desired configuration).

Nothing biometric is written to disk or kept after a transaction: frames, crops and templates
live in memory for one checkout or one screening and are dropped with its answer.

- :mod:`~facekey.edge.config`: the device's configuration folder (ids, 0600 credentials, the
  applied release).
- :mod:`~facekey.edge.transport`: signed HTTP calls; an unreachable server is an error, never a
  queue.
- :mod:`~facekey.edge.inventory` and :mod:`~facekey.edge.heartbeat`: what the device runs, and
  its heartbeats.
- :mod:`~facekey.edge.frames`: frames from a camera, a video file or a folder.
- :mod:`~facekey.edge.agent`: one checkout, end to end.
- :mod:`~facekey.edge.thermal`, :mod:`~facekey.edge.screening` and :mod:`~facekey.edge.kiosk`:
  radiometric frames, the screening decision, and the kiosk loop with hourly counts.
"""
