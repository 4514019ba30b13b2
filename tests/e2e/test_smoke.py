from harness import SpoolTest


class Smoke(SpoolTest):
    def test_succeeding_task(self):
        r = self.run_task({"id": "ok", "command": ["echo", "hello"]})
        self.assertEqual(r["status"], "succeeded")
        self.assertEqual(r["exit_code"], 0)
        self.assertEqual(r["stdout"], "hello\n")
