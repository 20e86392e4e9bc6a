// Module other provides no package of the build: only its requirements
// (none yet) take part in version selection.
module example.com/other

go 1.26.0
