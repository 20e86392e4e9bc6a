// Command bootstrap is the Lambda function (runtime provided.al2023) that
// serves the source-side resources Custom::KmsKeyPolicyStatements and
// Custom::AmiLaunchPermission. Build it with GOOS=linux GOARCH=arm64
// CGO_ENABLED=0 -tags lambda.norpc -trimpath -ldflags='-s -w -buildid='.
package main

import "github.com/crossaccountami/crossaccountami/internal/sourcehandler"

func main() { sourcehandler.Main() }
