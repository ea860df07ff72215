"""Integration test of the es plugin: being written."""
import sys
sys.exit(0)
