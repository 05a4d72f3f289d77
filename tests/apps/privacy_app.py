"""A kit with one eraser that remembers whom it erased (for `readykit privacy replay`)."""

from readykit import ReadyKit

erased: list[str] = []
kit = ReadyKit()


@kit.privacy.eraser("accounts")
def erase_accounts(subject: str) -> int:
    erased.append(subject)
    return 1
