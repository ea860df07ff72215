"""Integration test of the memcached plugin: being written."""
import sys
sys.exit(0)
