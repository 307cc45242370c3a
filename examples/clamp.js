function clamp(value, low, high) {
  if (value < low) {
    return <FILL:4>;
  }
  return Math.min(<FILL:6>);
}

module.exports = { clamp };
