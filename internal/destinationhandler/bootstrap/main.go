// Command bootstrap is the Lambda function (runtime provided.al2023) that
// serves the destination's custom resources (Custom::KmsGrant, the
// service-linked roles, Custom::CrossAccountAmiCopy and its hand-overs).
// Build it with GOOS=linux GOARCH=arm64 CGO_ENABLED=0 -tags lambda.norpc
// -trimpath -ldflags='-s -w -buildid='.
package main

import "github.com/crossaccountami/crossaccountami/internal/destinationhandler"

func main() { destinationhandler.Main() }
