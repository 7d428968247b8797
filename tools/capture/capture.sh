#!/usr/bin/env bash
# Runs the real agent CLIs (npm packages) offline against tools/modelstub on
# loopback and keeps what they print and write as fixtures under
# testdata/agents/real/<scenario>/, with ccusage's reports of the same
# transcripts as the reference for usage and cost.
#
#   tools/capture/capture.sh [scenario ...]    # default: every scenario
#   tools/capture/capture.sh --install-only    # only install the CLIs and ccusage
#
# Each scenario directory holds script.json (what the model answers, with its
# token counts), written by hand; the rest is the CLIs' own output:
#   command.txt        the command line that ran
#   stdout.ndjson      the CLI's stdout (stream-json / --json)
#   exit.txt           its exit status
#   home/...           the transcripts it wrote (Claude: .claude/projects,
#                      Codex: .codex/sessions, Gemini: .gemini/tmp/*/chats)
#   requests.ndjson    what the stub was asked, and which reply answered
#   ccusage-*.json     ccusage's reports of home/ (Claude and Codex)
# The CLIs are installed into $VIBEKIT_AGENTS (default ~/.cache/vibekit-agents).
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
real="$top/testdata/agents/real"
agents=${VIBEKIT_AGENTS:-$HOME/.cache/vibekit-agents}
work=/tmp/vibekit-capture   # fixed, so paths inside the fixtures are stable
export TZ=UTC

install_agents() {
  if [ ! -x "$agents/node_modules/.bin/claude" ] || [ ! -x "$agents/node_modules/.bin/codex" ] ||
     [ ! -x "$agents/node_modules/.bin/gemini" ] || [ ! -x "$agents/node_modules/.bin/ccusage" ]; then
    mkdir -p "$agents"
    (cd "$agents" && { [ -f package.json ] || npm init -y >/dev/null; })
    (cd "$agents" && npm install --no-audit --no-fund --silent \
      @anthropic-ai/claude-code@2.1.197 @openai/codex@0.171.0 @google/gemini-cli@0.61.0 \
      ccusage@18.0.11 @ccusage/codex@19.0.0)
  fi
  if [ ! -x "$agents/old/node_modules/.bin/codex" ]; then
    mkdir -p "$agents/old"
    (cd "$agents/old" && { [ -f package.json ] || npm init -y >/dev/null; } &&
      npm install --no-audit --no-fund --silent @openai/codex@0.39.0)
  fi
  bin="$agents/node_modules/.bin"
  oldbin="$agents/old/node_modules/.bin"
}

stub_pid=""
start_stub() { # start_stub DIR: serve DIR/script.json; sets $addr
  rm -f "$work/addr" "$1/requests.ndjson"
  "$work/modelstub" -script "$1/script.json" -addr-file "$work/addr" -log "$1/requests.ndjson" \
    -timeout 5m -idle 2m &
  stub_pid=$!
  for _ in $(seq 100); do [ -s "$work/addr" ] && break; sleep 0.05; done
  addr=$(cat "$work/addr")
}
stop_stub() { kill "$stub_pid" 2>/dev/null || true; wait "$stub_pid" 2>/dev/null || true; }

# scenario NAME: a fresh home and project directory, the stub started.
scenario() {
  name=$1; dir="$real/$name"
  echo "== $name" >&2
  home="$work/$name/home"; proj="$work/$name/project"
  rm -rf "$work/$name"; mkdir -p "$home" "$proj"
  find "$dir" -mindepth 1 ! -name script.json ! -name 'input*' -exec rm -rf {} + 2>/dev/null || true
  start_stub "$dir"
  : > "$dir/command.txt"
}

# run ARGS...: run an agent in the project directory, appending to the
# fixtures; its standard input is $stdin (default /dev/null).
run() {
  { printf '%q ' "${@}" | sed "s|$bin/||; s|$addr|STUB|"; echo; } >> "$dir/command.txt"
  local rc=0 out="$dir/stdout.ndjson" n
  n=1; [ -f "$dir/exit.txt" ] && n=$(($(wc -l < "$dir/exit.txt") + 1))
  [ "$n" -gt 1 ] && out="$dir/stdout.$n.ndjson"
  (cd "$proj" && HOME="$home" "$@" < "${stdin:-/dev/null}") > "$out" 2>> "$work/$name/stderr.txt" || rc=$?
  echo "$rc" >> "$dir/exit.txt"
}

# feed INPUT: print INPUT's lines one at a time, each after the agent has
# printed as many results as lines were sent, so that a stream-json session
# stays open for its next message (the agent stops at end of input).
feed() {
  local i=0 line
  while IFS= read -r line; do
    printf '%s\n' "$line"; i=$((i + 1))
    for _ in $(seq 600); do
      [ "$(grep -c '"type":"result"' "$dir/stdout.ndjson" 2>/dev/null || true)" -ge "$i" ] && break
      sleep 0.1
    done
  done < "$1"
}

claude_env() {
  echo env ANTHROPIC_BASE_URL="http://$addr" ANTHROPIC_API_KEY=sk-ant-stub \
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1 DISABLE_AUTOUPDATER=1
}

# keep_home PATTERN...: copy the transcripts into the fixture.
keep_home() {
  for p in "$@"; do
    (cd "$home" && find $p -type f \( -name '*.jsonl' -o -name '*.json' \) 2>/dev/null) | while read -r f; do
      mkdir -p "$dir/home/$(dirname "$f")"; cp "$home/$f" "$dir/home/$f"
    done
  done
}

ccusage_reports() {
  for r in daily session; do
    HOME="$home" CLAUDE_CONFIG_DIR="$home/.claude" "$bin/ccusage" "$r" --json --offline > "$dir/ccusage-$r.json"
  done
}

codex_reports() {
  for r in daily session; do
    CODEX_HOME="$home/.codex" "$bin/ccusage-codex" "$r" --json --offline > "$dir/ccusage-codex-$r.json"
  done
}

sid() { printf '00000000-0000-4000-8000-%012d' "$1"; }
sonnet=claude-sonnet-4-5-20250929

claude_tools() {
  scenario claude-tools
  run $(claude_env) "$bin/claude" -p "run echo hi" --session-id "$(sid 1)" --model $sonnet \
    --allowedTools "Bash(echo:*)" --output-format stream-json --verbose
  stop_stub; keep_home .claude/projects; ccusage_reports
}

claude_multiturn() {
  scenario claude-multiturn
  printf '%s\n' \
    '{"type":"user","message":{"role":"user","content":"first question: what is 2+2?"}}' \
    '{"type":"user","message":{"role":"user","content":"second question: and 3+3?"}}' > "$work/$name/input.ndjson"
  mkfifo "$work/$name/stdin"
  feed "$work/$name/input.ndjson" > "$work/$name/stdin" &
  local feeder=$!
  stdin="$work/$name/stdin" run $(claude_env) "$bin/claude" -p --session-id "$(sid 2)" --model $sonnet \
    --input-format stream-json --output-format stream-json --verbose
  wait "$feeder"
  stop_stub; keep_home .claude/projects; ccusage_reports
}

claude_resume() {
  scenario claude-resume
  run $(claude_env) "$bin/claude" -p "remember the number 7" --session-id "$(sid 3)" --model $sonnet \
    --output-format stream-json --verbose
  run $(claude_env) "$bin/claude" -p "which number did I say?" --resume "$(sid 3)" --model $sonnet \
    --output-format stream-json --verbose
  stop_stub; keep_home .claude/projects; ccusage_reports
}

claude_subagent() {
  scenario claude-subagent
  touch "$proj/README"
  run $(claude_env) "$bin/claude" -p "survey the repo" --session-id "$(sid 4)" --model $sonnet \
    --allowedTools "Bash(ls:*)" "Agent" "Task" --output-format stream-json --verbose
  stop_stub; keep_home .claude/projects; ccusage_reports
}

claude_overloaded() {
  scenario claude-overloaded
  run $(claude_env) CLAUDE_CODE_MAX_RETRIES=2 "$bin/claude" -p "say hello" --session-id "$(sid 5)" \
    --model $sonnet --output-format stream-json --verbose
  stop_stub; keep_home .claude/projects; ccusage_reports
}

claude_max_turns() {
  scenario claude-max-turns
  run $(claude_env) "$bin/claude" -p "do two steps" --session-id "$(sid 6)" --model $sonnet --max-turns 1 \
    --allowedTools "Bash(echo:*)" --output-format stream-json --verbose
  stop_stub; keep_home .claude/projects; ccusage_reports
}

claude_denied() {
  scenario claude-denied
  echo notes > "$proj/notes.txt"
  run $(claude_env) "$bin/claude" -p "delete notes.txt" --session-id "$(sid 7)" --model $sonnet \
    --output-format stream-json --verbose
  stop_stub; keep_home .claude/projects; ccusage_reports
}

claude_budget() {
  scenario claude-budget
  run $(claude_env) "$bin/claude" -p "work until done" --session-id "$(sid 8)" --model $sonnet \
    --max-budget-usd 0.25 --allowedTools "Bash(echo:*)" --output-format stream-json --verbose
  stop_stub; keep_home .claude/projects; ccusage_reports
}

# A request whose prompt is over 200k tokens, on a 1M-context model: the
# long-context rates apply.
claude_long_context() {
  scenario claude-long-context
  run $(claude_env) "$bin/claude" -p "read everything" --session-id "$(sid 9)" --model "$sonnet[1m]" \
    --output-format stream-json --verbose
  stop_stub; keep_home .claude/projects; ccusage_reports
}

# codex_config MODEL: point Codex at the stub, with no retries so that a
# failure shows at once.
codex_config() {
  mkdir -p "$home/.codex"
  cat > "$home/.codex/config.toml" <<TOML
model = "$1"
model_provider = "stub"
[model_providers.stub]
name = "stub"
base_url = "http://$addr/v1"
env_key = "STUB_API_KEY"
wire_api = "responses"
request_max_retries = 0
stream_max_retries = 0
TOML
}
codex_env() { echo env CODEX_HOME="$home/.codex" STUB_API_KEY=stub; }
codex_flags=(exec --json --skip-git-repo-check --dangerously-bypass-approvals-and-sandbox)

codex_tools() {
  scenario codex-tools; codex_config gpt-5-codex
  run $(codex_env) "$bin/codex" "${codex_flags[@]}" "run echo hi"
  stop_stub; keep_home .codex/sessions; codex_reports
}

codex_resume() {
  scenario codex-resume; codex_config gpt-5-codex
  run $(codex_env) "$bin/codex" "${codex_flags[@]}" "remember the number 7"
  run $(codex_env) "$bin/codex" "${codex_flags[@]}" resume --last "which number did I say?"
  stop_stub; keep_home .codex/sessions; codex_reports
}

codex_failed() {
  scenario codex-failed; codex_config gpt-5-codex
  run $(codex_env) "$bin/codex" "${codex_flags[@]}" "say hello"
  stop_stub; keep_home .codex/sessions; codex_reports
}

# Codex before the thread.* events printed {"id","msg"} events.
codex_old() {
  scenario codex-old; codex_config gpt-5
  run $(codex_env) "$oldbin/codex" "${codex_flags[@]}" "run echo hi"
  stop_stub; keep_home .codex/sessions; codex_reports
}

codex_old_failed() {
  scenario codex-old-failed; codex_config gpt-5
  run $(codex_env) "$oldbin/codex" "${codex_flags[@]}" "say hello"
  stop_stub; keep_home .codex/sessions
}

gemini_env() {
  mkdir -p "$home/.gemini"
  echo '{"security":{"auth":{"selectedType":"gemini-api-key"}}}' > "$home/.gemini/settings.json"
  echo env GEMINI_API_KEY=stub GOOGLE_GEMINI_BASE_URL="http://$addr" GEMINI_CLI_TRUST_WORKSPACE=true
}

gemini_tools() {
  scenario gemini-tools
  run $(gemini_env) "$bin/gemini" -p "run echo hi" -m gemini-2.5-pro --yolo --output-format stream-json
  stop_stub; keep_home .gemini/tmp
}

gemini_json() {
  scenario gemini-json
  run $(gemini_env) "$bin/gemini" -p "what is 2+2?" -m gemini-2.5-flash --output-format json
  stop_stub; keep_home .gemini/tmp
}

gemini_failed() {
  scenario gemini-failed
  run $(gemini_env) "$bin/gemini" -p "say hello" -m gemini-2.5-pro --output-format stream-json
  stop_stub; keep_home .gemini/tmp
}

all=(claude_tools claude_multiturn claude_resume claude_subagent claude_overloaded claude_max_turns claude_denied claude_budget claude_long_context
  codex_tools codex_resume codex_failed codex_old codex_old_failed gemini_tools gemini_json gemini_failed)

install_agents
if [ "${1:-}" = "--install-only" ]; then
  echo "agents and ccusage installed in $agents" >&2
  exit 0
fi
mkdir -p "$work"
(cd "$top" && go build -o "$work/modelstub" ./tools/modelstub)
trap stop_stub EXIT
if [ $# -eq 0 ]; then set -- "${all[@]}"; fi
for s in "$@"; do "${s//-/_}"; done
