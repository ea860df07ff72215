"""Integration test of the kinesis plugin: being written."""
import sys
sys.exit(0)
