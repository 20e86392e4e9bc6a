module example.com/consumer

go 1.26.0

require github.com/crossaccountami/crossaccountami v0.0.0

replace github.com/crossaccountami/crossaccountami => ../..
