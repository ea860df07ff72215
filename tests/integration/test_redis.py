"""Integration test of the redis plugin: being written."""
import sys
sys.exit(0)
