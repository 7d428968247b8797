package redact

import (
	"encoding/base64"
	"strings"
	"testing"
)

// rep repeats s until it is n bytes long: a constructed key body.
func rep(s string, n int) string { return strings.Repeat(s, n/len(s)+1)[:n] }

// TestRules stores a constructed sample of each fixed-prefix format (right
// prefix, length and alphabet) and a near miss that must be kept: too short,
// too long, a wrong alphabet, or the prefix inside a word.
func TestRules(t *testing.T) {
	hex := "0123456789abcdef"
	b62 := "aB3dE6gH9jK2mN5pQ8sT1vW4yZ7"
	tests := []struct {
		kind       string
		secret     string
		nearMisses []string
	}{
		{KindStripe, "sk_live_" + rep(b62, 24), []string{"sk_live_" + rep("abc", 24), "sk_live_short1", "risk_live_" + rep(b62, 24)}},
		{KindStripe, "rk_test_" + rep(b62, 99), []string{"pk_live_" + rep(b62, 24)}},
		{KindGitLab, "glpat-" + rep(b62, 20), []string{"glpat-" + rep(b62, 19), "glpat-abcdefghijklmnopqrstuv"}},
		{KindGitLab, "gldt-" + rep(b62, 20), []string{"gldt-" + rep(b62, 12)}},
		{KindGitLab, "glrt-" + rep(b62, 20), []string{"xglrt-" + rep(b62, 20)}},
		{KindGitLab, "glptt-" + rep(hex, 40), []string{"glptt-" + rep(hex, 39)}},
		{KindGitLab, "GR1348941" + rep(b62, 20), []string{"GR1348941" + rep(b62, 21)}},
		{KindGCP, "AIza" + rep("Sy-_"+b62, 35), []string{"AIza" + rep(b62, 34), "AIza" + rep(b62, 36)}},
		{KindGCP, `"private_key_id": "` + rep(hex, 40) + `"`, []string{`"private_key_id": "` + rep(hex, 39) + `"`, `"key_id": "` + rep(hex, 40) + `"`}},
		{KindHuggingFace, "hf_" + rep("abcXYZqrs", 34), []string{"hf_" + rep("abcXYZqrs", 33), "hf_" + rep("abc123", 34)}},
		{KindNPM, "npm_" + rep(b62, 36), []string{"npm_" + rep(b62, 35), "npm_install"}},
		{KindPyPI, "pypi-AgEIcHlwaS5vcmc" + rep(b62+"-_", 60), []string{"pypi-AgEIcHlwaS5vcmc" + rep(b62, 20), "pypi-" + rep(b62, 80)}},
		{KindSendGrid, "SG." + rep(b62, 22) + "." + rep(b62, 43), []string{"SG." + rep(b62, 22) + "." + rep(b62, 42), "SG.first"}},
		{KindTwilio, "SK" + rep(hex, 32), []string{"SK" + rep(hex, 31), "SK" + rep(hex, 33), "ASK" + rep(hex, 32)}},
		{KindTwilio, "AC" + rep(hex, 32), []string{"AC" + rep("0123456789ABCDEF", 32)}},
		{KindSlackWebhook, "https://hooks.slack.com/services/T0123ABCD/B0123ABCD/" + rep(b62, 24), []string{"https://hooks.slack.com/services/"}},
		{KindSlack, "xoxb-1234567890-1234567890123-" + rep(b62, 24), []string{"xoxb-not-a-token"}},
		{KindSlack, "xapp-1-A0123ABCD-1234567890-" + rep(hex, 64), []string{"xapp-short1"}},
		{KindGitHub, "ghs_" + rep(b62, 36), []string{"ghs_" + rep(b62, 35)}},
		{KindGitHub, "ghr_" + rep(b62, 36), []string{"ghx_" + rep(b62, 36)}},
		{KindOpenAI, "sk-proj-" + rep(b62+"-_", 100), []string{"sk-1234567890"}},
		{KindOpenAI, "sk-svcacct-" + rep(b62, 60), []string{"task-" + rep(b62, 60)}},
		{KindAnthropic, "sk-ant-admin01-" + rep(b62, 93) + "AA", []string{"sk-ant-api03-short"}},
		{KindAWS, "ABIA" + rep("Z2Y3X4W5", 16), []string{"ABIA" + rep("Z2Y3X4W5", 15)}},
		{KindAWS, "aws_secret_access_key = " + rep("wJalrXUtnFEMI/K7MDENG/bPxRfiCY", 40), []string{"aws_secret_access_key = " + rep(b62, 39), "aws_region = " + rep(b62, 40)}},
		{KindAWS, "AWS_SECRET_ACCESS_KEY: '" + rep("wJalrXUtnFEMI+K7MDENG", 40) + "'", []string{"AWS_SECRET_ACCESS_KEY: ${SECRET}"}},
		{KindAWS, `"SecretAccessKey": "` + rep("wJalrXUtnFEMI/K7MDENG", 40) + `"`, []string{`"AccessKeyId": "` + rep(b62, 40) + `"`}},
		{KindShopify, "shpat_" + rep(hex, 32), []string{"shpat_" + rep(hex, 31), "shpat_" + rep("xyz", 32)}},
		{KindDigitalOcean, "dop_v1_" + rep(hex, 64), []string{"dop_v1_" + rep(hex, 63)}},
		{KindDoppler, "dp.pt." + rep(b62, 43), []string{"dp.pt." + rep(b62, 20)}},
		{KindLinear, "lin_api_" + rep(b62, 40), []string{"lin_api_" + rep(b62, 41)}},
		{KindPostman, "PMAK-" + rep(hex, 24) + "-" + rep(hex, 34), []string{"PMAK-" + rep(hex, 24) + "-" + rep(hex, 33)}},
		{KindDiscord, "https://discord.com/api/webhooks/123456789012345678/" + rep(b62+"-_", 68), []string{"https://discord.com/api/webhooks/"}},
		{KindGrafana, "glsa_" + rep(b62, 32) + "_" + rep(hex, 8), []string{"glsa_" + rep(b62, 10)}},
		{KindVault, "hvs." + rep(b62+"-_", 95), []string{"hvs." + rep(b62, 20)}},
		{KindAge, "AGE-SECRET-KEY-1" + rep("QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L", 58), []string{"AGE-SECRET-KEY-1" + rep("QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L", 57)}},
		{KindRubyGems, "rubygems_" + rep(hex, 48), []string{"rubygems_" + rep(hex, 47)}},
		{KindNewRelic, "NRAK-" + rep("ABCDEFGH0123456789", 27), []string{"NRAK-" + rep("ABC", 27)}},
		{KindAtlassian, "ATATT3" + rep(b62+"-_=", 186), []string{"ATATT3" + rep(b62, 20)}},
		{KindAzure, "AZURE_CLIENT_SECRET=" + "abc8Q~" + rep(b62+"_.-", 34), []string{"abc8Q~" + rep(b62, 30), "xabc8Q~" + rep(b62, 34), "abcdQ~" + rep(b62, 34)}},
		{KindAzure, "DefaultEndpointsProtocol=https;AccountName=acme;EndpointSuffix=core.windows.net;AccountKey=" + rep(b62+"+/", 86) + "==", []string{"AccountKey=" + rep(b62, 40) + ";"}},
		{KindBearer, "Authorization: Bearer " + rep(b62, 32), []string{"Authorization: Bearer <token>", "Authorization: Bearer $TOKEN", "Authorization: Bearer YOUR_TOKEN_GOES_HERE"}},
		{KindBearer, `"authorization": "bearer ` + rep(b62+"._~+/", 40) + `=="`, []string{`"authorization": "bearer abc"`}},
		{KindJWT, "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dBjftJeZ4CVPmB92K27uhbUJU1p1r_wW1gFWFOEjXk", nil},
		{KindOpenAI, "Authorization: Bearer sk-proj-" + rep(b62, 40), nil},
		{KindBasicAuth, "Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte("deploy:s3cr3t-pw")), []string{"Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte("no colon here")), "Authorization: Basic realm"}},
	}
	r := MustNew(t, Options{Level: Secrets})
	for _, tt := range tests {
		if tt.secret == "" {
			continue
		}
		t.Run(tt.kind, func(t *testing.T) {
			for _, in := range []string{tt.secret, "x " + tt.secret + " y", `{"v":"` + tt.secret + `"}`} {
				got := r.String(in)
				if !strings.Contains(got, "[REDACTED:"+tt.kind+"]") {
					t.Errorf("String(%q) = %q, want [REDACTED:%s]", in, got, tt.kind)
				}
				if body := secretPart(tt.secret); strings.Contains(got, body) {
					t.Errorf("String(%q) = %q keeps the secret", in, got)
				}
			}
			for _, near := range tt.nearMisses {
				if got := r.String(near); got != near {
					t.Errorf("near miss %q changed to %q", near, got)
				}
			}
		})
	}
}

// secretPart is the last 16 bytes of the key in a sample (after a name and
// assignment, before a closing quote).
func secretPart(s string) string {
	s = strings.TrimRight(s, `"'=`)
	return s[len(s)-16:]
}

// TestRules_Formats checks every other fixed-prefix format from its facts,
// restated here: prefix, body alphabet and length. The sample has the
// shortest valid body (and, for an exact length, one byte more is kept);
// the near miss is one byte short.
func TestRules_Formats(t *testing.T) {
	const (
		hex   = "0123456789abcdef"
		b62   = "aB3dE6gH9jK2mN5pQ8sT1vW4yZ7"
		key   = "aB3-dE6_gH9jK2mN5pQ8sT1vW4yZ7"
		upper = "AB3DE6GH9JK2MN5PQ8ST1VW4YZ7"
	)
	tests := []struct {
		kind, prefix, alpha string
		n                   int
		exact               bool
	}{
		{KindSlack, "xoxa-", "1234567890-ab", 10, false},
		{KindSlack, "xoxr-", "1234567890-ab", 10, false},
		{KindSlack, "xoxs-", "1234567890-ab", 10, false},
		{KindSlack, "xoxo-", "1234567890-ab", 10, false},
		{KindSlack, "xoxe-", "1234567890-ab", 10, false},
		{KindGitHub, "gho_", b62, 36, false},
		{KindGitHub, "ghu_", b62, 36, false},
		{KindGitHub, "github_pat_", b62 + "_", 30, false},
		{KindGitLab, "glcbt-", key, 20, false},
		{KindGitLab, "glimt-", key, 25, false},
		{KindGitLab, "glagent-", key, 50, false},
		{KindGitLab, "gloas-", key, 64, false},
		{KindGitLab, "glsoat-", key, 20, false},
		{KindGitLab, "glffct-", key, 20, false},
		{KindGitLab, "glft-", key, 20, false},
		{KindStripe, "sk_test_", b62, 10, false},
		{KindStripe, "sk_prod_", b62, 10, false},
		{KindStripe, "rk_live_", b62, 10, false},
		{KindStripe, "rk_prod_", b62, 10, false},
		{KindHuggingFace, "api_org_", "abcXYZqrs", 34, true},
		{KindPyPI, "pypi-AgENdGVzdC5weXBpLm9yZw", key, 50, false},
		{KindShopify, "shpca_", hex, 32, true},
		{KindShopify, "shppa_", hex, 32, true},
		{KindShopify, "shpss_", hex, 32, true},
		{KindDigitalOcean, "doo_v1_", hex, 64, true},
		{KindDigitalOcean, "dor_v1_", hex, 64, true},
		{KindDoppler, "dp.st.", key, 40, false},
		{KindDoppler, "dp.sa.", b62, 40, false},
		{KindDoppler, "dp.ct.", b62, 40, false},
		{KindDoppler, "dp.scim.", key, 40, false},
		{KindDoppler, "dp.audit.", b62, 40, false},
		{KindLinear, "lin_oauth_", hex, 64, true},
		{KindDiscord, "discordapp.com/api/webhooks/", "123456789/" + key, 60, false},
		{KindGrafana, "glc_", b62 + "+/", 32, false},
		{KindSentry, "sntrys_", b62 + "+/", 50, false},
		{KindSentry, "sntryu_", hex, 64, true},
		{KindVault, "hvb.", key, 138, false},
		{KindPlanetScale, "pscale_tkn_", key + ".", 32, false},
		{KindPlanetScale, "pscale_pw_", key + ".", 32, false},
		{KindPlanetScale, "pscale_oauth_", key + ".", 32, false},
		{KindPulumi, "pul-", hex, 40, true},
		{KindFlyio, "fo1_", key, 43, true},
		{KindFlyio, "fm1r_", b62 + "+/", 100, false},
		{KindFlyio, "fm1a_", b62 + "+/", 100, false},
		{KindFlyio, "fm2_", b62 + "+/", 64, false},
		{KindPrefect, "pnu_", b62, 36, true},
		{KindReadme, "rdme_", b62, 70, true},
		{KindDynatrace, "dt0c01.", "ABCDEFGH12345678ABCDEFGH." + hex + hex + hex + hex, 89, true},
		{Kind1Password, "ops_eyJ", b62 + "+/", 250, false},
		{KindNewRelic, "NRJS-", hex, 19, true},
		{KindNewRelic, "NRII-", "ab12-CD34", 32, true},
		{KindSquare, "sq0atp-", key, 22, false},
		{KindSquare, "sq0csp-", key, 43, true},
		{KindSquare, "EAAA", key, 22, false},
		{KindSourcegraph, "sgp_", hex, 40, false},
		{KindSupabase, "sbp_", hex, 40, true},
		{KindGroq, "gsk_", b62, 52, true},
		{KindPerplexity, "pplx-", b62, 48, true},
		{KindDuffel, "duffel_test_", key + "=", 43, true},
		{KindDuffel, "duffel_live_", key + "=", 43, true},
		{KindShippo, "shippo_live_", hex, 40, true},
		{KindShippo, "shippo_test_", hex, 40, true},
		{KindTypeform, "tfp_", key + ".=", 59, true},
		{KindTailscale, "tskey-", "auth-k123ABC-" + b62, 20, false},
		{KindAWS, "ASIA", upper, 16, true},
		{KindAWS, "ACCA", upper, 16, true},
		{KindAlibaba, "LTAI", b62, 20, true},
		{KindEasyPost, "EZAK", b62, 54, true},
		{KindEasyPost, "EZTK", b62, 54, true},
		{KindClojars, "CLOJARS_", b62, 60, true},
		{KindFrameio, "fio-u-", key + "=", 64, true},
		{KindInfracost, "ico-", b62, 32, true},
		{KindScalingo, "tk-us-", key, 48, true},
		{KindBrevo, "xkeysib-", rep(hex, 64) + "-", 81, true},
		{KindSettleMint, "sm_pat_", b62, 16, true},
		{KindSettleMint, "sm_sat_", b62, 16, true},
		{KindArtifactory, "AKCp", b62, 69, true},
		{KindCloudflare, "v1.0-", rep(hex, 24) + "-", 171, true},
		{KindDefined, "dnkey-", key + "=", 79, true},
		{KindHarness, "pat.", rep(b62, 22) + ".", 68, false}, // one more is a '.', a full stop
		{KindTeamsWebhook, "webhook.office.com/webhookb2/", "0a1b2c3d-4e5f@0a1b2c3d/IncomingWebhook/", 60, false},
	}
	r := MustNew(t, Options{Level: Secrets})
	for _, tt := range tests {
		t.Run(tt.prefix, func(t *testing.T) {
			sample := tt.prefix + rep(tt.alpha, tt.n)
			for _, in := range []string{sample, "x=" + sample + ".", `"` + sample + `"`} {
				if got := r.String(in); !strings.Contains(got, "[REDACTED:"+tt.kind+"]") || strings.Contains(got, sample[len(sample)-8:]) {
					t.Errorf("String(%q) = %q, want [REDACTED:%s]", in, got, tt.kind)
				}
			}
			near := []string{tt.prefix + rep(tt.alpha, tt.n-1), "z" + sample}
			if tt.exact {
				near = append(near, tt.prefix+rep(tt.alpha, tt.n+1))
			}
			for _, in := range near {
				if got := r.String(in); got != in {
					t.Errorf("near miss %q changed to %q", in, got)
				}
			}
		})
	}
}
