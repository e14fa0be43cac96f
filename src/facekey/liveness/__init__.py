"""Liveness: passive single-frame scorers, passive bursts fused with temporal and thermal evidence.

Nothing is loaded at import: the MiniFASNet sessions, the face detector and the Face Mesh
interpreter are created on first use by :class:`~facekey.liveness.session.LivenessChecker`.
"""
