// Command broken does not compile: handlerbuild must fail loudly.
package main

func main() { undefinedFunction() }
