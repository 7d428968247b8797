package redact

import (
	"encoding/base64"
	"strings"
)

// The kinds of the fixed-prefix rules (see rules), as they appear in
// "[REDACTED:<kind>]".
const (
	KindStripe       = "stripe"
	KindGitLab       = "gitlab"
	KindGCP          = "gcp"
	KindHuggingFace  = "huggingface"
	KindNPM          = "npm"
	KindPyPI         = "pypi"
	KindSendGrid     = "sendgrid"
	KindTwilio       = "twilio"
	KindSlackWebhook = "slack-webhook"
	KindAzure        = "azure"
	KindDiscord      = "discord"
	KindShopify      = "shopify"
	KindDigitalOcean = "digitalocean"
	KindDoppler      = "doppler"
	KindLinear       = "linear"
	KindPostman      = "postman"
	KindGrafana      = "grafana"
	KindSentry       = "sentry"
	KindDatabricks   = "databricks"
	KindVault        = "vault"
	KindPlanetScale  = "planetscale"
	KindRubyGems     = "rubygems"
	KindAge          = "age"
	KindPulumi       = "pulumi"
	KindFlyio        = "flyio"
	KindPrefect      = "prefect"
	KindReadme       = "readme"
	KindDynatrace    = "dynatrace"
	Kind1Password    = "1password"
	KindAtlassian    = "atlassian"
	KindAlibaba      = "alibaba"
	KindEasyPost     = "easypost"
	KindNewRelic     = "newrelic"
	KindSquare       = "square"
	KindSourcegraph  = "sourcegraph"
	KindSupabase     = "supabase"
	KindGroq         = "groq"
	KindPerplexity   = "perplexity"
	KindDuffel       = "duffel"
	KindShippo       = "shippo"
	KindTypeform     = "typeform"
	KindTailscale    = "tailscale"
	KindClojars      = "clojars"
	KindFrameio      = "frameio"
	KindInfracost    = "infracost"
	KindScalingo     = "scalingo"
	KindBrevo        = "brevo"
	KindSettleMint   = "settlemint"
	KindArtifactory  = "artifactory"
	KindCloudflare   = "cloudflare"
	KindDefined      = "defined-networking"
	KindHarness      = "harness"
	KindTeamsWebhook = "teams-webhook"
	KindBearer       = "bearer"
	KindBasicAuth    = "basic-auth"
)

// rule is a secret that starts with a fixed prefix: the prefix, then a body
// of bytes that alpha accepts, between min and max of them (max 0: no
// bound), ending at a word boundary. The formats are the issuers' own
// (prefixes, lengths, alphabets), as secret scanners such as gitleaks know
// them.
type rule struct {
	prefix   string
	kind     string
	alpha    func(byte) bool
	min, max int
	mixed    bool // the body holds a digit and a letter: real keys do, words do not
	digit    bool // the body holds a digit
}

func hexChar(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
func lowerHex(c byte) bool   { return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' }
func letter(c byte) bool     { return isAlnum(c) && !isDigit(c) }
func b64Char(c byte) bool    { return isAlnum(c) || c == '+' || c == '/' || c == '=' }
func b64urlChar(c byte) bool { return b64Char(c) || c == '_' || c == '-' }
func dotKeyChar(c byte) bool { return keyChar(c) || c == '.' }
func tokenChar(c byte) bool  { return keyChar(c) || c == '.' || c == '=' }
func pathChar(c byte) bool   { return keyChar(c) || c == '/' || c == '+' }

// bech32 is the alphabet of age's secret keys (upper case).
func bech32(c byte) bool { return strings.IndexByte("QPZRY9X8GF2TVDW0S3JN54KHCE6MUA7L", c) >= 0 }

// rules are found at their prefix's first '-', '_', '.' or '/', the
// trigger: each trigger byte is one fast byte search. A prefix that is
// another's start comes after it (sk-ant- before sk-).
var rules = []rule{
	// Anthropic and OpenAI (and the project, service account and admin keys)
	{prefix: "sk-ant-", kind: KindAnthropic, alpha: keyChar, min: minAnthropic, mixed: true},
	{prefix: "sk-", kind: KindOpenAI, alpha: keyChar, min: minOpenAI, mixed: true},
	// Slack tokens: bot, user, app-level, workspace, refresh, legacy.
	{prefix: "xoxb-", kind: KindSlack, alpha: slackChar, min: minSlack, digit: true},
	{prefix: "xoxp-", kind: KindSlack, alpha: slackChar, min: minSlack, digit: true},
	{prefix: "xoxa-", kind: KindSlack, alpha: slackChar, min: minSlack, digit: true},
	{prefix: "xoxr-", kind: KindSlack, alpha: slackChar, min: minSlack, digit: true},
	{prefix: "xoxs-", kind: KindSlack, alpha: slackChar, min: minSlack, digit: true},
	{prefix: "xoxo-", kind: KindSlack, alpha: slackChar, min: minSlack, digit: true},
	{prefix: "xoxe-", kind: KindSlack, alpha: slackChar, min: minSlack, digit: true},
	{prefix: "xapp-", kind: KindSlack, alpha: slackChar, min: 20, mixed: true},
	// Slack's and Discord's webhook URLs hold their secret in the path.
	{prefix: "hooks.slack.com/services/", kind: KindSlackWebhook, alpha: pathChar, min: 20, mixed: true},
	{prefix: "hooks.slack.com/workflows/", kind: KindSlackWebhook, alpha: pathChar, min: 20, mixed: true},
	{prefix: "hooks.slack.com/triggers/", kind: KindSlackWebhook, alpha: pathChar, min: 20, mixed: true},
	{prefix: "discord.com/api/webhooks/", kind: KindDiscord, alpha: pathChar, min: 60, mixed: true},
	{prefix: "discordapp.com/api/webhooks/", kind: KindDiscord, alpha: pathChar, min: 60, mixed: true},
	// GitHub: classic, OAuth, user-to-server, server-to-server, refresh and
	// fine-grained tokens.
	{prefix: "ghp_", kind: KindGitHub, alpha: base62, min: minGitHub},
	{prefix: "gho_", kind: KindGitHub, alpha: base62, min: minGitHub},
	{prefix: "ghu_", kind: KindGitHub, alpha: base62, min: minGitHub},
	{prefix: "ghs_", kind: KindGitHub, alpha: base62, min: minGitHub},
	{prefix: "ghr_", kind: KindGitHub, alpha: base62, min: minGitHub},
	{prefix: "github_pat_", kind: KindGitHub, alpha: patChar, min: minGitHubPAT},
	// GitLab: personal, deploy, runner, pipeline trigger, CI job, incoming
	// mail, agent, OAuth application, SCIM, feature flag and feed tokens.
	{prefix: "glpat-", kind: KindGitLab, alpha: dotKeyChar, min: 20, mixed: true},
	{prefix: "gldt-", kind: KindGitLab, alpha: dotKeyChar, min: 20, mixed: true},
	{prefix: "glrt-", kind: KindGitLab, alpha: dotKeyChar, min: 20, mixed: true},
	{prefix: "glptt-", kind: KindGitLab, alpha: hexChar, min: 40, max: 40},
	{prefix: "glcbt-", kind: KindGitLab, alpha: keyChar, min: 20, mixed: true},
	{prefix: "glimt-", kind: KindGitLab, alpha: keyChar, min: 25, mixed: true},
	{prefix: "glagent-", kind: KindGitLab, alpha: keyChar, min: 50, mixed: true},
	{prefix: "gloas-", kind: KindGitLab, alpha: keyChar, min: 64, mixed: true},
	{prefix: "glsoat-", kind: KindGitLab, alpha: keyChar, min: 20, mixed: true},
	{prefix: "glffct-", kind: KindGitLab, alpha: keyChar, min: 20, mixed: true},
	{prefix: "glft-", kind: KindGitLab, alpha: keyChar, min: 20, mixed: true},
	// Stripe secret and restricted keys (publishable pk_ keys are public).
	{prefix: "sk_live_", kind: KindStripe, alpha: base62, min: 10, max: 247, mixed: true},
	{prefix: "sk_test_", kind: KindStripe, alpha: base62, min: 10, max: 247, mixed: true},
	{prefix: "sk_prod_", kind: KindStripe, alpha: base62, min: 10, max: 247, mixed: true},
	{prefix: "rk_live_", kind: KindStripe, alpha: base62, min: 10, max: 247, mixed: true},
	{prefix: "rk_test_", kind: KindStripe, alpha: base62, min: 10, max: 247, mixed: true},
	{prefix: "rk_prod_", kind: KindStripe, alpha: base62, min: 10, max: 247, mixed: true},
	// Hugging Face user and organisation tokens: 34 letters.
	{prefix: "hf_", kind: KindHuggingFace, alpha: letter, min: 34, max: 34},
	{prefix: "api_org_", kind: KindHuggingFace, alpha: letter, min: 34, max: 34},
	{prefix: "npm_", kind: KindNPM, alpha: base62, min: 36, max: 36},
	// PyPI's macaroons start with the base64 of their location, pypi.org.
	{prefix: "pypi-AgEIcHlwaS5vcmc", kind: KindPyPI, alpha: keyChar, min: 50},
	{prefix: "pypi-AgENdGVzdC5weXBpLm9yZw", kind: KindPyPI, alpha: keyChar, min: 50}, // test.pypi.org
	// SendGrid: SG.<22>.<43>.
	{prefix: "SG.", kind: KindSendGrid, alpha: dotKeyChar, min: 66, max: 66},
	{prefix: "shpat_", kind: KindShopify, alpha: hexChar, min: 32, max: 32},
	{prefix: "shpca_", kind: KindShopify, alpha: hexChar, min: 32, max: 32},
	{prefix: "shppa_", kind: KindShopify, alpha: hexChar, min: 32, max: 32},
	{prefix: "shpss_", kind: KindShopify, alpha: hexChar, min: 32, max: 32},
	{prefix: "dop_v1_", kind: KindDigitalOcean, alpha: lowerHex, min: 64, max: 64},
	{prefix: "doo_v1_", kind: KindDigitalOcean, alpha: lowerHex, min: 64, max: 64},
	{prefix: "dor_v1_", kind: KindDigitalOcean, alpha: lowerHex, min: 64, max: 64},
	{prefix: "dp.pt.", kind: KindDoppler, alpha: base62, min: 40, max: 44},
	{prefix: "dp.st.", kind: KindDoppler, alpha: keyChar, min: 40, max: 80},
	{prefix: "dp.sa.", kind: KindDoppler, alpha: base62, min: 40, max: 44},
	{prefix: "dp.ct.", kind: KindDoppler, alpha: base62, min: 40, max: 44},
	{prefix: "dp.scim.", kind: KindDoppler, alpha: keyChar, min: 40, max: 80},
	{prefix: "dp.audit.", kind: KindDoppler, alpha: base62, min: 40, max: 44},
	{prefix: "lin_api_", kind: KindLinear, alpha: base62, min: 40, max: 40},
	{prefix: "lin_oauth_", kind: KindLinear, alpha: lowerHex, min: 64, max: 64},
	// Postman: PMAK-<24 hex>-<34 hex>.
	{prefix: "PMAK-", kind: KindPostman, alpha: func(c byte) bool { return hexChar(c) || c == '-' }, min: 59, max: 59},
	{prefix: "glc_", kind: KindGrafana, alpha: b64Char, min: 32, max: 400, mixed: true},
	{prefix: "glsa_", kind: KindGrafana, alpha: patChar, min: 41, max: 41, mixed: true},
	// An org token is sntrys_<base64 of its JSON claims>_<secret>: the secret
	// is base64url, so "_" and "-" belong to the token.
	{prefix: "sntrys_", kind: KindSentry, alpha: b64urlChar, min: 50, mixed: true},
	{prefix: "sntryu_", kind: KindSentry, alpha: lowerHex, min: 64, max: 64},
	{prefix: "hvs.", kind: KindVault, alpha: keyChar, min: 90, max: 120},
	{prefix: "hvb.", kind: KindVault, alpha: keyChar, min: 138, max: 300},
	{prefix: "pscale_tkn_", kind: KindPlanetScale, alpha: tokenChar, min: 32, max: 64, mixed: true},
	{prefix: "pscale_pw_", kind: KindPlanetScale, alpha: tokenChar, min: 32, max: 64, mixed: true},
	{prefix: "pscale_oauth_", kind: KindPlanetScale, alpha: tokenChar, min: 32, max: 64, mixed: true},
	{prefix: "rubygems_", kind: KindRubyGems, alpha: lowerHex, min: 48, max: 48},
	{prefix: "AGE-SECRET-KEY-1", kind: KindAge, alpha: bech32, min: 58, max: 58},
	{prefix: "pul-", kind: KindPulumi, alpha: lowerHex, min: 40, max: 40},
	{prefix: "fo1_", kind: KindFlyio, alpha: keyChar, min: 43, max: 43, mixed: true},
	{prefix: "fm1r_", kind: KindFlyio, alpha: b64Char, min: 100, mixed: true},
	{prefix: "fm1a_", kind: KindFlyio, alpha: b64Char, min: 100, mixed: true},
	{prefix: "fm2_", kind: KindFlyio, alpha: b64Char, min: 64, mixed: true},
	{prefix: "pnu_", kind: KindPrefect, alpha: base62, min: 36, max: 36},
	{prefix: "rdme_", kind: KindReadme, alpha: base62, min: 70, max: 70},
	// Dynatrace: dt0c01.<24>.<64>.
	{prefix: "dt0c01.", kind: KindDynatrace, alpha: func(c byte) bool { return isAlnum(c) || c == '.' }, min: 89, max: 89},
	{prefix: "ops_eyJ", kind: Kind1Password, alpha: b64Char, min: 250},
	{prefix: "NRAK-", kind: KindNewRelic, alpha: upperDigit, min: 27, max: 27, mixed: true},
	{prefix: "NRJS-", kind: KindNewRelic, alpha: lowerHex, min: 19, max: 19},
	{prefix: "NRII-", kind: KindNewRelic, alpha: slackChar, min: 32, max: 32},
	{prefix: "sq0atp-", kind: KindSquare, alpha: keyChar, min: 22, max: 60},
	{prefix: "sq0csp-", kind: KindSquare, alpha: keyChar, min: 43, max: 43},
	{prefix: "sgp_", kind: KindSourcegraph, alpha: func(c byte) bool { return hexChar(c) || c == '_' || letter(c) }, min: 40, max: 62, mixed: true},
	{prefix: "sbp_", kind: KindSupabase, alpha: lowerHex, min: 40, max: 40},
	{prefix: "gsk_", kind: KindGroq, alpha: base62, min: 52, max: 52},
	{prefix: "pplx-", kind: KindPerplexity, alpha: base62, min: 48, max: 48},
	{prefix: "duffel_test_", kind: KindDuffel, alpha: func(c byte) bool { return keyChar(c) || c == '=' }, min: 43, max: 43},
	{prefix: "duffel_live_", kind: KindDuffel, alpha: func(c byte) bool { return keyChar(c) || c == '=' }, min: 43, max: 43},
	{prefix: "shippo_live_", kind: KindShippo, alpha: hexChar, min: 40, max: 40},
	{prefix: "shippo_test_", kind: KindShippo, alpha: hexChar, min: 40, max: 40},
	{prefix: "tfp_", kind: KindTypeform, alpha: tokenChar, min: 59, max: 59, mixed: true},
	{prefix: "tskey-", kind: KindTailscale, alpha: keyChar, min: 20, mixed: true},
	{prefix: "CLOJARS_", kind: KindClojars, alpha: base62, min: 60, max: 60},
	{prefix: "fio-u-", kind: KindFrameio, alpha: func(c byte) bool { return keyChar(c) || c == '=' }, min: 64, max: 64},
	{prefix: "ico-", kind: KindInfracost, alpha: base62, min: 32, max: 32, mixed: true},
	{prefix: "tk-us-", kind: KindScalingo, alpha: keyChar, min: 48, max: 48},
	// Brevo (Sendinblue): xkeysib-<64 hex>-<16>.
	{prefix: "xkeysib-", kind: KindBrevo, alpha: func(c byte) bool { return lowerHex(c) || c == '-' || isAlnum(c) }, min: 81, max: 81},
	{prefix: "sm_pat_", kind: KindSettleMint, alpha: base62, min: 16, max: 16, mixed: true},
	{prefix: "sm_aat_", kind: KindSettleMint, alpha: base62, min: 16, max: 16, mixed: true},
	{prefix: "sm_sat_", kind: KindSettleMint, alpha: base62, min: 16, max: 16, mixed: true},
	// Cloudflare origin CA keys: v1.0-<24 hex>-<146 hex>.
	{prefix: "v1.0-", kind: KindCloudflare, alpha: func(c byte) bool { return lowerHex(c) || c == '-' }, min: 171, max: 171},
	// Defined Networking: dnkey-<26>-<52>.
	{prefix: "dnkey-", kind: KindDefined, alpha: func(c byte) bool { return keyChar(c) || c == '=' }, min: 79, max: 79},
	// Harness personal and service account tokens: pat.<22>.<24>.<20>.
	{prefix: "pat.", kind: KindHarness, alpha: dotKeyChar, min: 68, max: 68, mixed: true},
	{prefix: "sat.", kind: KindHarness, alpha: dotKeyChar, min: 68, max: 68, mixed: true},
	{prefix: "webhook.office.com/webhookb2/", kind: KindTeamsWebhook, alpha: func(c byte) bool { return pathChar(c) || c == '@' }, min: 60, mixed: true},
}

// trigger is where a prefix is looked for: its first '-', '_' or '.'.
func trigger(prefix string) int { return strings.IndexAny(prefix, triggers) }

// triggers are the bytes rules are found at; each is one fast byte search.
const triggers = "-_."

// ruleIndex lists the rules of one trigger byte by the first byte of their
// prefix, and tells which bytes end the word before the trigger, so that
// most triggers are passed over at a glance.
type ruleIndex struct {
	byFirst [128][]int
	last    [256]bool
}

var byTrigger = func() (ix [len(triggers)]ruleIndex) {
	for n, r := range rules {
		i := trigger(r.prefix)
		if i <= 0 {
			continue // not a rule of this table: the tests find every rule
		}
		t := &ix[strings.IndexByte(triggers, r.prefix[i])]
		t.byFirst[r.prefix[0]] = append(t.byFirst[r.prefix[0]], n)
		t.last[r.prefix[i-1]] = true
	}
	return ix
}()

// maxWord is the longest word before a trigger ("discordapp", "shippo").
const maxWord = 12

// wordBefore returns the start of the word that ends at s[i], and whether
// it starts at a word boundary (see boundary) within maxWord bytes. A JSON
// escape just before the word ("\n", "\u003c") is not part of it.
func wordBefore(s string, i int) (int, bool) {
	w := i
	for w > 0 && i-w < maxWord+5 && isAlnum(s[w-1]) {
		w--
	}
	if w > 0 && s[w-1] == '\\' {
		switch {
		case strings.IndexByte("nrtbf", s[w]) >= 0:
			w++
		case s[w] == 'u' && w+5 <= i && hexChar(s[w+1]) && hexChar(s[w+2]) && hexChar(s[w+3]) && hexChar(s[w+4]):
			w += 5
		}
		return w, w < i && i-w <= maxWord
	}
	return w, w < i && i-w <= maxWord && (w == 0 || !isAlnum(s[w-1]))
}

// scanTrigger finds the secrets at the bytes c of s: the rules whose
// trigger is c, for '-' private key blocks ("-----BEGIN "), and for '_' and
// '-' the values of names such as aws_secret_access_key (see assigned).
func scanTrigger(s string, c byte, ms []match, st *pemState) []match {
	ix := &byTrigger[strings.IndexByte(triggers, c)]
	for i := 0; i < len(s); {
		j := strings.IndexByte(s[i:], c)
		if j < 0 {
			break
		}
		i += j
		next := i + 1
		if c == '-' && i+1 < len(s) && s[i+1] == '-' {
			if strings.HasPrefix(s[i:], "-----BEGIN ") {
				if m, ok := pemBlock(s, i, st); ok {
					ms = append(ms, m)
					i = m.end
					continue
				}
			}
			// Skip the rest of a run of dashes ("---", "--flag"): only its
			// first dash can start a BEGIN line, only its last end a prefix.
			for next+1 < len(s) && s[next] == '-' && s[next+1] == '-' {
				next++
			}
		}
		if i > 0 && ix.last[s[i-1]] {
			if w, ok := wordBefore(s, i); ok && s[w] < 128 {
				for _, n := range ix.byFirst[s[w]] {
					r := &rules[n]
					if !strings.HasPrefix(s[w:], r.prefix) {
						continue
					}
					if end, ok := r.body(s, w+len(r.prefix)); ok {
						ms = append(ms, match{w, end, r.kind})
						next = end
						break
					}
				}
			}
		}
		if c != '.' && next == i+1 && i+4 <= len(s) && s[i+1]|0x20 == 'k' && s[i+2]|0x20 == 'e' && s[i+3]|0x20 == 'y' {
			if m, ok := assigned(s, i+1); ok {
				ms = append(ms, m)
				next = m.end
			}
		}
		i = next
	}
	return ms
}

// anchored is a rule with no trigger byte in its prefix, found at the
// prefix's byte at (an upper-case letter, which text holds far less often
// than lower-case ones).
type anchored struct {
	rule
	at int
}

// anchors are the bytes anchored rules are found at; at '~' Azure's client
// secrets (see azureSecret), at 'z' and 'Z' Authorization headers (an
// upper-case one, AUTHORIZATION, too).
const anchors = "AKGz~Z"

var anchoredRules = func() (a [len(anchors)][]anchored) {
	for _, r := range []rule{
		// AWS access key ids: long-term, temporary, and the rarer kinds.
		{prefix: "AKIA", kind: KindAWS, alpha: upperDigit, min: lenAWS, max: lenAWS},
		{prefix: "ASIA", kind: KindAWS, alpha: upperDigit, min: lenAWS, max: lenAWS},
		{prefix: "ABIA", kind: KindAWS, alpha: upperDigit, min: lenAWS, max: lenAWS},
		{prefix: "ACCA", kind: KindAWS, alpha: upperDigit, min: lenAWS, max: lenAWS},
		{prefix: "AIza", kind: KindGCP, alpha: keyChar, min: 35, max: 35}, // Google API keys
		{prefix: "AC", kind: KindTwilio, alpha: lowerHex, min: 32, max: 32},
		{prefix: "SK", kind: KindTwilio, alpha: hexChar, min: 32, max: 32},
		{prefix: "ATATT3", kind: KindAtlassian, alpha: func(c byte) bool { return keyChar(c) || c == '=' }, min: 186, max: 186},
		{prefix: "LTAI", kind: KindAlibaba, alpha: base62, min: 20, max: 20},
		{prefix: "EZAK", kind: KindEasyPost, alpha: base62, min: 54, max: 54},
		{prefix: "EZTK", kind: KindEasyPost, alpha: base62, min: 54, max: 54},
		{prefix: "EAAA", kind: KindSquare, alpha: keyChar, min: 22, max: 60, mixed: true},
		{prefix: "GR1348941", kind: KindGitLab, alpha: keyChar, min: 20, max: 20},
		{prefix: "AKCp", kind: KindArtifactory, alpha: base62, min: 69, max: 69},
	} {
		for k := range len(anchors) {
			if i := strings.IndexByte(r.prefix, anchors[k]); i >= 0 {
				a[k] = append(a[k], anchored{r, i})
				break
			}
		}
	}
	return a
}()

// scanAnchored finds the anchored rules, the values of names such as
// SecretAccessKey (at their 'K', see assigned), the credentials of
// Authorization headers (at their 'z', see authorization) and Azure's
// client secrets (at their '~').
func scanAnchored(s string, ms []match, has uint16) []match {
	for k := range len(anchors) {
		if has&(1<<(len(triggers)+k)) == 0 {
			continue
		}
		c := anchors[k]
		for i := 0; i < len(s); {
			j := strings.IndexByte(s[i:], c)
			if j < 0 {
				break
			}
			i += j
			next := i + 1
			rs := anchoredRules[k]
			for n := range rs {
				a := &rs[n] // not a copy: this runs at every anchor byte
				w := i - a.at
				if w < 0 || !strings.HasPrefix(s[w:], a.prefix) || !boundary(s, w) {
					continue
				}
				if end, ok := a.body(s, w+len(a.prefix)); ok {
					ms = append(ms, match{w, end, a.kind})
					next = end
					break
				}
			}
			if next == i+1 {
				var m match
				ok := false
				switch {
				case c == 'K' && i+3 <= len(s) && s[i+1]|0x20 == 'e' && s[i+2]|0x20 == 'y':
					m, ok = assigned(s, i)
				case c == 'z' || c == 'Z':
					m, ok = authorization(s, i)
				case c == '~':
					m, ok = azureSecret(s, i)
				}
				if ok {
					ms = append(ms, m)
					next = m.end
				}
			}
			i = next
		}
	}
	return ms
}

// authorization matches the credentials of an HTTP Authorization header
// whose name has its 'z' at s[z] ("Authorization: Bearer <token>",
// "authorization": "Basic <base64>", Proxy-Authorization too): an opaque
// bearer token of at least minBearer characters holding a digit and a
// letter, or the base64 of "user:password". The scheme stays readable.
func authorization(s string, z int) (match, bool) {
	const name = "authori"
	start := z - len(name)
	if start < 0 || !strings.EqualFold(s[start:z], name) || !strings.HasPrefix(s[z+1:], "ation") && !strings.HasPrefix(s[z+1:], "ATION") {
		return match{}, false
	}
	v := valueStart(s, z+1+len("ation"))
	if v < 0 {
		return match{}, false
	}
	switch {
	case len(s)-v > 7 && strings.EqualFold(s[v:v+7], "bearer "):
		v += 7
		for v < len(s) && s[v] == ' ' {
			v++
		}
		end, digit, letter := span(s, v, bearerChar)
		for end < len(s) && s[end] == '=' {
			end++
		}
		if end-v >= minBearer && digit && letter {
			return match{v, end, KindBearer}, true
		}
	case len(s)-v > 6 && strings.EqualFold(s[v:v+6], "basic "):
		v += 6
		for v < len(s) && s[v] == ' ' {
			v++
		}
		end, _, _ := span(s, v, b64Char)
		if end-v >= 8 && basicCredentials(s[v:end]) {
			return match{v, end, KindBasicAuth}, true
		}
	}
	return match{}, false
}

// minBearer is the shortest opaque bearer token taken for one: words and
// placeholders ("Bearer token", "Bearer YOUR_TOKEN") are shorter or have
// no digit.
const minBearer = 16

// bearerChar is the alphabet of RFC 6750's b64token.
func bearerChar(c byte) bool { return keyChar(c) || c == '.' || c == '~' || c == '+' || c == '/' }

// basicCredentials reports whether b64 is the base64 of printable
// "user:password", as HTTP Basic authentication sends it.
func basicCredentials(b64 string) bool {
	var dec [256]byte
	if len(b64) > 4*len(dec)/3 {
		return false
	}
	n, err := base64.StdEncoding.Decode(dec[:], []byte(b64))
	if err != nil {
		n, err = base64.RawStdEncoding.Decode(dec[:], []byte(strings.TrimRight(b64, "=")))
		if err != nil {
			return false
		}
	}
	colon := false
	for _, c := range dec[:n] {
		if c < ' ' || c > '~' {
			return false
		}
		colon = colon || c == ':'
	}
	return colon && dec[0] != ':'
}

// assigned matches a secret known by the name it is given, where s[k:]
// starts that name's "key" (any case): the value of aws_secret_access_key
// (also AWS_SECRET_ACCESS_KEY, SecretAccessKey, aws-secret-access-key), 40
// base64 characters; of a Google service account's "private_key_id", 40
// hex digits; of an Azure storage connection string's AccountKey, 88 base64
// characters. The name stays readable.
func assigned(s string, k int) (match, bool) {
	w, e := k, k+3
	for w > 0 && k-w < 64 && keyChar(s[w-1]) {
		w--
	}
	for e < len(s) && e-k < 64 && keyChar(s[e]) {
		e++
	}
	kind, alpha, n := assignedKind(s[w:e])
	if kind == "" {
		return match{}, false
	}
	v := valueStart(s, e)
	if v < 0 {
		return match{}, false
	}
	if end, _, _ := span(s, v, alpha); end-v == n && (end == len(s) || !isAlnum(s[end]) && s[end] != '+' && s[end] != '/') {
		return match{v, end, kind}, true
	}
	return match{}, false
}

// assignedKind is the kind of secret a name is given, its alphabet and its
// length; "" if the name is not one of them.
func assignedKind(name string) (string, func(byte) bool, int) {
	switch {
	case name == "private_key_id":
		return KindGCP, lowerHex, 40
	case name == "AccountKey": // an Azure storage connection string's
		return KindAzure, b64Char, 88
	case awsSecretName(name):
		return KindAWS, func(c byte) bool { return isAlnum(c) || c == '+' || c == '/' }, 40
	}
	return "", nil, 0
}

// assignedValue reports whether value, a JSON object's member named name,
// is the secret that name is given (see assigned).
func assignedValue(name, value string) (string, bool) {
	kind, alpha, n := assignedKind(name)
	if kind == "" || len(value) != n {
		return "", false
	}
	for i := 0; i < len(value); i++ {
		if !alpha(value[i]) {
			return "", false
		}
	}
	return kind, true
}

// awsSecretName reports whether name, without case, '_' and '-', names an
// AWS secret access key.
func awsSecretName(name string) bool {
	var b [64]byte
	n := 0
	for k := 0; k < len(name) && n < len(b); k++ {
		if c := name[k]; c != '_' && c != '-' {
			b[n] = c | 0x20
			n++
		}
	}
	folded := string(b[:n])
	return strings.HasSuffix(folded, "secretaccesskey") || strings.HasSuffix(folded, "awssecretkey")
}

// valueStart returns where the value assigned after a name ending at s[i]
// starts: past a closing quote, spaces, '=', ':' or "=>", spaces and an
// opening quote; -1 if there is no assignment.
func valueStart(s string, i int) int {
	skip := func(set string) {
		for i < len(s) && strings.IndexByte(set, s[i]) >= 0 {
			i++
		}
	}
	skip(`"'\`)
	skip(" \t")
	if i >= len(s) || s[i] != '=' && s[i] != ':' {
		return -1
	}
	i++
	skip(">")
	skip(" \t")
	skip(`"'\`)
	return i
}

// body returns the end of r's body starting at s[i], if it is one.
func (r *rule) body(s string, i int) (int, bool) {
	end, digit, letter := span(s, i, r.alpha)
	for end > i && s[end-1] == '.' { // a sentence's full stop
		end--
	}
	n := end - i
	if n < r.min || r.max > 0 && n > r.max || r.mixed && !(digit && letter) || r.digit && !digit {
		return 0, false
	}
	if end < len(s) && isAlnum(s[end]) {
		return 0, false // the word goes on: not this format
	}
	return end, true
}

// azureSecret matches an Azure AD (Entra ID) client secret whose "Q~" has
// its '~' at s[q]: 3 characters, a digit, "Q~", then 31 to 34 more, of
// letters, digits and _ ~ . (and - after the marker).
func azureSecret(s string, q int) (match, bool) {
	start := q - 5
	if start < 0 || s[q-1] != 'Q' || !isDigit(s[q-2]) {
		return match{}, false
	}
	head := func(c byte) bool { return isAlnum(c) || c == '_' || c == '~' || c == '.' }
	for k := start; k < q-2; k++ {
		if !head(s[k]) {
			return match{}, false
		}
	}
	if start > 0 && head(s[start-1]) && !escapeBefore(s, start) {
		return match{}, false // the word starts earlier: not this format
	}
	end, digit, letter := span(s, q+1, func(c byte) bool { return head(c) || c == '-' })
	if n := end - (q + 1); n < 31 || n > 34 || !(digit && letter) {
		return match{}, false
	}
	return match{start, end, KindAzure}, true
}

// scanDatabricks finds Databricks personal access tokens: "dapi", 32
// lower-case hex digits, and sometimes "-" and a digit or two. Its prefix
// has no trigger byte and no upper-case anchor, so it is looked for on its
// own, as a substring: one search of the text.
func scanDatabricks(s string, ms []match) []match {
	for i := 0; ; {
		j := strings.Index(s[i:], "dapi")
		if j < 0 {
			return ms
		}
		w := i + j
		i = w + 4
		if !boundary(s, w) {
			continue
		}
		end, _, _ := span(s, i, lowerHex)
		if end-i != 32 {
			continue
		}
		if end+1 < len(s) && s[end] == '-' && isDigit(s[end+1]) {
			end += 2
			if end < len(s) && isDigit(s[end]) {
				end++
			}
		}
		if end < len(s) && isAlnum(s[end]) {
			continue // the word goes on: not this format
		}
		ms = append(ms, match{w, end, KindDatabricks})
		i = end
	}
}
