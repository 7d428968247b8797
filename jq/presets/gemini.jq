# vibekit-pipe preset "gemini": Gemini CLI's stream-json output,
#   gemini -p "..." --output-format stream-json | vibekit-pipe --preset gemini
#
# Each input line is one event; this program turns it into records:
#   init         the start row: session_id, model
#   message      a stream row: a user message is a "user" row (with its
#                prompt, which the start row takes when --prompt was not
#                given), an assistant message an "assistant" row (one per
#                delta when the CLI streams them)
#   tool_use     a stream row naming the tool; streamData is its parameters
#   tool_result  a stream row (vibekit-pipe names its tool from the tool_use
#                with the same tool_id); is_error when its status is error
#   error        a stream row of kind error: a warning or an error the run
#                goes on from; a failed run ends with a result of status
#                error, which is the one error row of that failure
#   result       the end row (status, stats); the error row instead when its
#                status is error, with the error's message
#   other        a stream row holding the event, its kind the event type
#
# The `-o json` output (one document: session_id, response, stats; or
# session_id and error when the run failed) is mapped as a whole run when it
# reaches the preset as one value (vibekit-pipe joins the pretty-printed
# document's lines into one input): a start row when it names its session,
# then the end row (or the error row) with the response and the stats.
#
# It reads Gemini CLI's chat transcripts too (~/.gemini/tmp/<project>/chats/
# session-*.jsonl): the first line names the session (sessionId) for the
# lines after it; each message (user, gemini, info, error) is a stream row at
# its own timestamp, a gemini message's tool calls are tool_use and
# tool_result rows, its thoughts thinking rows; "$set" lines (updates of the
# session's metadata) are dropped.
#
# Usage, for `vibekit telemetry usage`, goes in metadata.tokens (see the usage
# package): the result's stats.models (or the -o json document's), per model,
# a running total of this run (scope $run and the model); a transcript's
# gemini message, that API call's usage keyed by the message id (a message
# is written again when its tool calls finish: it counts once). Gemini counts
# cached tokens in its input and thoughts apart from its output: input is
# input - cached (plus tool-use prompt tokens), cacheRead cached, output the
# candidates plus thoughts, reasoning the thoughts. A stream result gives no
# thoughts of their own: they are total_tokens - input_tokens - output_tokens.
#
# Variables: $session is the current session id (the last one a record
# carried, --session before any); $agent, $mode, $prompt, $sandbox, $repo are
# the flags, null when not given.

def agent: $agent // "gemini";
def drop_nulls: with_entries(select(.value != null));
def num: if type == "number" then . else 0 end;
def text_of:
  if type == "string" then .
  elif type == "array" then [.[] | if (.text | type) == "string" then .text else tojson end] | join("\n")
  elif . == null then null
  else tojson end;

# The usage of a stream result's model stats, as a running total of this run.
def stream_tokens($model):
  ((.total_tokens | num) - (.input_tokens | num) - (.output_tokens | num)) as $rest
  | (if .thoughts != null then .thoughts elif $rest > 0 then $rest else 0 end) as $thoughts
  | {model: $model, input: ((.input_tokens | num) - (.cached | num)), cacheRead: .cached,
     output: ((.output_tokens | num) + $thoughts), reasoning: $thoughts, scope: "\($run):\($model)"};
# The usage of a -o json document's model tokens (input, prompt, candidates,
# cached, thoughts, tool), as a running total of this run.
def doc_tokens($model):
  {model: $model, input: ((.prompt // .input | num) - (.cached | num) + (.tool | num)), cacheRead: .cached,
   output: ((.candidates | num) + (.thoughts | num)), reasoning: .thoughts, scope: "\($run):\($model)"};
# The usage of one transcript message (tokens: input, output, cached,
# thoughts, tool, total).
def message_tokens:
  .tokens as $t
  | {model, input: (($t.input | num) - ($t.cached | num) + ($t.tool | num)), cacheRead: $t.cached,
     output: (($t.output | num) + ($t.thoughts | num)), reasoning: $t.thoughts, key: .id};
# f of each model's stats, given as {key: model, value: stats}.
def per_model(f):
  if (.stats.models | type) == "object" and (.stats.models | length) > 0 then
    [.stats.models | to_entries[] | f]
  else null
  end;

(if (.timestamp | type) == "string" then {timestamp} else {} end) as $time
| def row($sid; $type; $data; $meta):
    {sessionId: $sid, eventType: $type, agentType: agent, streamData: $data, metadata: $meta} + $time;
  def row($type; $data; $meta): row($session; $type; $data; $meta);

if .type == "init" then
  {sessionId: (.session_id // $session), eventType: "start", agentType: agent, prompt: $prompt,
   metadata: ({kind: "init", model} | drop_nulls)} + $time

elif .type == "message" and (has("id") | not) then
  if .role == "user" then row("stream"; .content | text_of; {kind: "user"}) + {prompt: (.content | text_of)}
  else row("stream"; .content | text_of; {kind: (.role // "assistant")} + (if .delta then {delta} else {} end))
  end

elif .type == "tool_use" then
  row("stream"; .parameters | tojson; {kind: "tool_use", tool: .tool_name, tool_use_id: .tool_id})

elif .type == "tool_result" then
  row("stream"; (if .error then .error.message else .output | text_of end);
      {kind: "tool_result", tool_use_id: .tool_id, status, is_error: (.status == "error")} | drop_nulls)

elif .type == "error" and (has("id") | not) then
  row("stream"; .message; {kind: "error", severity} | drop_nulls)

elif .type == "result" then
  ({status, stats, tokens: per_model(.key as $m | .value | stream_tokens($m))} | drop_nulls) as $meta
  | if .status == "error" then row("error"; .error.message // "error"; $meta + ({error_type: .error.type} | drop_nulls))
    else row("end"; null; $meta)
    end

# The -o json document.
elif .type == null and ((has("response") and (.stats | type) == "object") or (.error | type) == "object") then
  ({stats, tokens: per_model(.key as $m | .value.tokens | doc_tokens($m))} | drop_nulls) as $meta
  | (.session_id // $session) as $sid
  | ((.stats.models // {}) | to_entries[0].key) as $model
  | (if .session_id then
       {sessionId: $sid, eventType: "start", agentType: agent, prompt: $prompt,
        metadata: ({kind: "init", model: $model} | drop_nulls)}
     else empty end),
    (if .error then row($sid; "error"; .error.message // "error"; $meta + {kind: "result", status: "error"} + ({error_type: .error.type} | drop_nulls))
     else row($sid; "end"; .response; $meta + {kind: "result", status: "success"})
     end)

# Chat transcripts.
elif has("$set") then
  empty

elif (.sessionId | type) == "string" and has("startTime") and (has("type") | not) then
  row(.sessionId; "stream"; null; {kind: "session", session_kind: .kind, projectHash} | drop_nulls)
  + {timestamp: .startTime}

elif has("id") and (.type | type) == "string" then
  if .type == "user" then
    row("stream"; .content | text_of; {kind: "user", message_id: .id})
  elif .type == "gemini" then
    (if (.tokens | type) == "object" then {tokens: message_tokens} else {} end) as $tokens
    | ({model} | drop_nulls) as $model
    | row("stream"; .content | text_of; {kind: "text", message_id: .id} + $model + $tokens),
      (.thoughts[]? | row("stream"; .description // tojson; {kind: "thinking", subject} | drop_nulls)),
      (.toolCalls[]?
       | row("stream"; .args | tojson; {kind: "tool_use", tool: .name, tool_use_id: .id}),
         (if .status and .status != "executing" then
            row("stream"; .resultDisplay | text_of; {kind: "tool_result", tool_use_id: .id, status, is_error: (.status == "error")})
            + (if (.timestamp | type) == "string" then {timestamp} else {} end)
          else empty end))
  else
    row("stream"; .content | text_of; {kind: .type, message_id: .id})
  end

else
  row("stream"; tojson; {kind: .type})
end
