-- ane.llm.chat: the Jinja subset renders Llama 2 and Qwen2 (ChatML) style templates exactly,
-- and refuses what it does not implement with a message naming the construct.
local chat = require "ane.llm.chat"

-- Templates written here in the shape those model families ship (role checks, slicing,
-- set, loop variables, raise_exception, whitespace control, .strip()).
local CHATML = "{%- if messages[0]['role'] == 'system' %}{{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}"
  .. "{%- else %}{{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{%- endif %}"
  .. "{%- for message in messages %}{%- if (message.role == \"user\") or (message.role == \"system\" and not loop.first) %}"
  .. "{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}"
  .. "{%- elif message.role == \"assistant\" %}{{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>\\n' }}"
  .. "{%- endif %}{%- endfor %}\n{%- if add_generation_prompt %}\n    {{- '<|im_start|>assistant\\n' }}\n{%- endif %}\n"
local LLAMA2 = "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}"
  .. "{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}"
  .. "{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}"
  .. "{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
  .. "{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\\n' + system_message + '\\n<</SYS>>\\n\\n' + message['content'] %}"
  .. "{% else %}{% set content = message['content'] %}{% endif %}{% if message['role'] == 'user' %}"
  .. "{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}"
  .. "{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}"

local MSGS = {
  { role = "system", content = "Be brief." }, { role = "user", content = "Hi" },
  { role = "assistant", content = "Hello!" }, { role = "user", content = " Bye " },
}

describe("ane.llm.chat", function()
  it("renders a ChatML (Qwen2) template", function()
    assert.are.equal("<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n"
      .. "<|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\n Bye <|im_end|>\n<|im_start|>assistant\n",
      chat.compile(CHATML):render(MSGS, true))
    assert.are.equal("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\nx<|im_end|>\n",
      chat.compile(CHATML):render({ { role = "user", content = "x" } }, false))
  end)

  it("renders a Llama 2 template with its variables", function()
    local t = chat.compile(LLAMA2, { bos_token = "<s>", eos_token = "</s>" })
    assert.are.equal("<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Hello! </s><s>[INST] Bye [/INST]", t:render(MSGS, true))
    assert.has_error(function() t:render({ { role = "user", content = "a" }, { role = "user", content = "b" } }) end,
      "chat template: Conversation roles must alternate user/assistant/user/assistant/...")
  end)

  it("evaluates the expression subset", function()
    local function r(src, vars) return chat.compile(src, vars):render({}, false) end
    assert.are.equal("3|ab|yes|no|2|HI|x", r("{{ 1 + 2 }}|{{ 'a' ~ 'b' }}|{{ 'yes' if 1 < 2 else 'no' }}|{{ 'yes' if x is defined else 'no' }}|{{ [1, 2] | length }}|{{ 'hi' | upper }}|{{ ' x ' | trim }}"))
    assert.are.equal("TF", r("{{ 'b' in 'abc' }}{{ 3 in [1, 2] }}"):gsub("True", "T"):gsub("False", "F"))
    assert.are.equal("bc", r("{{ s[1:] }}", { s = "abc" }))
  end)

  it("refuses what it does not implement, naming it", function()
    assert.has_error(function() chat.compile("{% macro f() %}{% endmacro %}") end, "chat template: {% macro %} is not supported")
    assert.has_error(function() chat.compile("{{ x | capitalize }}") end, "chat template: filter 'capitalize' is not supported")
    assert.has_error(function() chat.compile("{% if x %}") end, "chat template: {% if %} without {% endif %}")
    assert.has_error(function() chat.compile("{{ x ") end, "chat template: unclosed {{")
  end)
end)
