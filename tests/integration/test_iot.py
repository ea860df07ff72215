"""Integration test of the iot plugin: being written."""
import sys
sys.exit(0)
