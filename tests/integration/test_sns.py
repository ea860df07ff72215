"""Integration test of the sns plugin: being written."""
import sys
sys.exit(0)
