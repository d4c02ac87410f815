import pandas as pd

from custval.data.fingerprint import frame_fingerprint


def test_frame_fingerprint_changes_with_any_value():
    frame = pd.DataFrame({"customer_id": [1, 2], "amount": [1.0, 2.0]})
    changed = frame.copy()
    changed.loc[1, "amount"] = 2.01
    assert frame_fingerprint(frame) == frame_fingerprint(frame.copy())
    assert frame_fingerprint(frame) != frame_fingerprint(changed)
    assert len(frame_fingerprint(frame)) == 64
