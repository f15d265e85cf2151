"""Serving: policies behind NVIDIA Triton, the robot-side client, and the openpi protocol bridge."""
