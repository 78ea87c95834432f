"""Spectral volumes: motion <-> spectrum math and normalisation (transform), the volume with its file format
(volume), and the playback controls on a volume (controls)."""
