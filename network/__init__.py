"""network: the multi-stage 3D CNN that lifts the audio-visual encodings to metric 3D pose.

Not built yet: its issue (training, evaluation, baselines) comes after the data side.
"""
