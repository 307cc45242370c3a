def mean(values):
    <EDIT>total = 0
    for v in values:
        total = total + v</EDIT>
    return total / len(values)
