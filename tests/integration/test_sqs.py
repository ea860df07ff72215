"""Integration test of the sqs plugin: being written."""
import sys
sys.exit(0)
