"""Integration test of the firehose plugin: being written."""
import sys
sys.exit(0)
