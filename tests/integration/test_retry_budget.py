"""One owner of the retry budget (issue 9, nested retries).

The engine owns the retries of record sends: a send that the service
throttles or fails goes out FANOUT_RETRY_ATTEMPTS times in all, whatever
FANOUT_AWS_MAX_ATTEMPTS says (that one bounds only the calls nothing else
retries: the mapping store, management commands, STS and container
credentials). And a failing STS is asked one bounded burst of times for a
whole invocation, not once per send.

The real `fanout invoke` against tests/servers/aws_service.py (faults
injected with /__faults, requests counted by /__stats) and
tests/servers/sts_server.py (roles named throttleN-... are throttled N
times). Run by meson with /usr/bin/python3.
"""

import os
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402

OTHER_ACCOUNT = "210987654321"
TOPIC = "arn:aws:sns:us-east-1:%s:budget" % harness.ACCOUNT
# Each (service, plugin, destination, operation counted by aws_service).
TARGETS = [
    ("firehose", "firehose", "budget", "PutRecordBatch"),
    ("sns", "sns", TOPIC, "Publish"),
    ("lambda", "lambda", "budget", "Invoke"),
]


class RetryBudgetTest(harness.AwsServiceCase):
    RESOURCES = {"firehose": ["budget", "budget-sts"], "sns": [TOPIC], "lambda": ["budget"]}
    ENDPOINTS = ("FIREHOSE", "SNS", "LAMBDA")

    def sent(self, service, operation):
        by = self.aws.stats()["by_service"].get(service, {})
        return by.get(operation, {}).get("count", 0)

    def assert_counts_say(self, err, n):
        """Every attempt count in the messages is the engine's n: none from
        an inner loop ("after 5 attempts") next to it."""
        counts = [int(x) for x in re.findall(r"(\d+) attempts?\b", err)]
        self.assertTrue(counts, err)
        self.assertEqual(set(counts), {n}, err)

    def test_throttled_send_goes_out_exactly_n_times(self):
        ev = harness.kinesis_event([("k", b"one")])
        for service, plugin, dest, op in TARGETS:
            for n in (1, 3, 5):
                with self.subTest(service=service, attempts=n):
                    self.aws.reset()
                    self.aws.faults({"service": service, "kind": "throttle", "count": -1,
                                     "retryAfter": 0})
                    r, failed = self.invoke([harness.mapping("t", plugin, dest)], ev,
                                            FANOUT_RETRY_ATTEMPTS=n,
                                            FANOUT_AWS_MAX_ATTEMPTS=4)
                    err = r.stderr.decode()
                    self.assertEqual(r.returncode, 1, err)
                    self.assertEqual(failed, ["1000"])
                    self.assertIn("throttled", err)
                    # N, not N x FANOUT_AWS_MAX_ATTEMPTS
                    self.assertEqual(self.sent(service, op), n, err)
                    self.assert_counts_say(err, n)

    def test_default_budget_is_four_attempts(self):
        """Without FANOUT_RETRY_ATTEMPTS a record goes out 4 times (README,
        "Who retries"): the first send and three resends."""
        ev = harness.kinesis_event([("k", b"one")])
        self.aws.faults({"service": "sns", "kind": "throttle", "count": -1, "retryAfter": 0})
        r, failed = self.invoke([harness.mapping("t", "sns", TOPIC)], ev,
                                FANOUT_AWS_MAX_ATTEMPTS=5)
        err = r.stderr.decode()
        self.assertEqual(failed, ["1000"], err)
        self.assertEqual(self.sent("sns", "Publish"), 4, err)
        self.assert_counts_say(err, 4)

    def test_server_errors_go_out_exactly_n_times(self):
        ev = harness.kinesis_event([("k", b"one")])
        for service, plugin, dest, op in TARGETS:
            with self.subTest(service=service):
                self.aws.reset()
                self.aws.faults({"service": service, "kind": "error500", "count": -1})
                r, failed = self.invoke([harness.mapping("t", plugin, dest)], ev,
                                        FANOUT_RETRY_ATTEMPTS=3, FANOUT_AWS_MAX_ATTEMPTS=5)
                err = r.stderr.decode()
                self.assertEqual(r.returncode, 1, err)
                self.assertEqual(failed, ["1000"])
                self.assertEqual(self.sent(service, op), 3, err)
                self.assert_counts_say(err, 3)

    def test_throttled_twice_then_delivered_by_the_engine(self):
        # the budget is the engine's: two throttles and the third attempt lands
        ev = harness.kinesis_event([("k", b"one"), ("k", b"two")])
        self.aws.faults({"service": "firehose", "kind": "throttle", "count": 2,
                         "retryAfter": 0})
        r, failed = self.invoke([harness.mapping("t", "firehose", "budget")], ev,
                                FANOUT_RETRY_ATTEMPTS=3, FANOUT_AWS_MAX_ATTEMPTS=5)
        self.assertEqual(r.returncode, 0, r.stderr.decode())
        self.assertEqual(self.sent("firehose", "PutRecordBatch"), 3)
        got = self.aws.received("firehose", "budget")
        self.assertEqual(len(got), 2)

    def test_sts_asked_a_bounded_number_of_times(self):
        # Four targets behind one throttled role, sent one after the other,
        # each with an engine retry budget of 4: STS sees one burst of
        # FANOUT_AWS_MAX_ATTEMPTS (3), not 4 targets x 3 (nor x 4 retries).
        role = "arn:aws:iam::%s:role/throttle999-budget" % OTHER_ACCOUNT
        sts = harness.StsServer(register_with=[self.aws.url])
        try:
            arn = "arn:aws:firehose:us-east-1:%s:deliverystream/budget-sts" % OTHER_ACCOUNT
            maps = [harness.mapping("x%d" % i, "firehose", arn, role=role)
                    for i in range(4)]
            r, failed = self.invoke(maps, harness.kinesis_event([("a", b"1"), ("b", b"2")]),
                                    AWS_ENDPOINT_URL_STS=sts.url, FANOUT_MAX_PARALLEL=1,
                                    FANOUT_RETRY_ATTEMPTS=4, FANOUT_AWS_MAX_ATTEMPTS=3)
            err = r.stderr.decode()
            self.assertEqual(r.returncode, 1, err)
            self.assertEqual(sorted(failed), ["1000", "1001"])
            self.assertIn("Throttling", err)
            roles = sts.stats()["roles"]
            self.assertEqual(roles[role]["requests"], 3, (roles, err))
            self.assertEqual(self.sent("firehose", "PutRecordBatch"), 0)
        finally:
            sts.stop()

    def test_sts_recovering_within_one_burst(self):
        # throttled twice, then credentials: one refresh, three STS requests,
        # and every target delivered with the one key issued
        role = "arn:aws:iam::%s:role/throttle2-budget" % OTHER_ACCOUNT
        sts = harness.StsServer(register_with=[self.aws.url])
        try:
            arn = "arn:aws:firehose:us-east-1:%s:deliverystream/budget-sts" % OTHER_ACCOUNT
            maps = [harness.mapping("x%d" % i, "firehose", arn, role=role)
                    for i in range(4)]
            r, failed = self.invoke(maps, harness.kinesis_event([("a", b"1")]),
                                    AWS_ENDPOINT_URL_STS=sts.url, FANOUT_MAX_PARALLEL=1,
                                    FANOUT_AWS_MAX_ATTEMPTS=3)
            self.assertEqual(r.returncode, 0, r.stderr.decode())
            self.assertEqual(sts.stats()["roles"][role]["requests"], 3)
            self.assertEqual(len(sts.issued), 1)
            self.assertEqual(len(self.aws.received("firehose", "budget-sts")), 4)
        finally:
            sts.stop()


if __name__ == "__main__":
    unittest.main(verbosity=2)
