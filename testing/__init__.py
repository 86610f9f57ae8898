"""Test doubles of the app's outside peers (InvokeAI, RunPod), for the test suite and the benchmarks.

Kept out of the installed packages: nothing the app runs in production imports them.
"""
