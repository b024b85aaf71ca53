"""How long do I have? Reads preemptd's notice file between training steps."""
import json
import os
from datetime import datetime, timezone

NOTICE_FILE = os.environ.get("PREEMPTD_NOTICE_FILE", "/run/preemptd/notice.json")


def seconds_left(kinds=("terminate", "stop", "hibernate", "preempt")):
    """Seconds until the VM goes away, or None while no such notice is raised."""
    try:
        with open(NOTICE_FILE, encoding="utf-8") as file:
            notice = json.load(file)  # written whole (a rename): never half a file
    except FileNotFoundError:
        return None
    if notice["advisory"] or notice["kind"] not in kinds or notice["deadline"] is None:
        return None
    deadline = datetime.fromisoformat(notice["deadline"].replace("Z", "+00:00"))
    return max(0.0, (deadline - datetime.now(timezone.utc)).total_seconds())


if __name__ == "__main__":
    # In the trainer:
    #   for step, batch in enumerate(loader):
    #       train_step(batch)
    #       if (left := seconds_left()) is not None:
    #           save_checkpoint(model, optimizer, step)  # within `left` seconds
    #           raise SystemExit(0)
    left = seconds_left()
    print("no notice" if left is None else f"{left:.0f} seconds left")
