class Stack:
    """A last-in, first-out stack."""

    def __init__(self):
        self.items = []

    def push(self, item):
        <FILL>

    def pop(self):
        if not self.items:
            raise IndexError("pop from empty stack")
        return <FILL:8>

    def __len__(self):
        return len(self.items)
