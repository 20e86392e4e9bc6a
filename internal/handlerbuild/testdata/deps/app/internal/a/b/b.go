package b

const B = "b"
