package moto_test

import (
	"net/http"
	"testing"

	"github.com/crossaccountami/crossaccountami/internal/testenv/moto"
)

func TestStartAnswersAndResets(t *testing.T) {
	s := moto.Start(t)

	resp, err := http.Get(s.URL + "/moto-api/data.json")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("HTTP %d", resp.StatusCode)
	}
	s.Reset(t)
	if s.Env()["AWS_ENDPOINT_URL_KMS"] != s.URL {
		t.Errorf("Env %v", s.Env())
	}
}
