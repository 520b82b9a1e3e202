// The hotline agents' console (served by src/channels/console.rs).
// Every piece of data is rendered with textContent; innerHTML is never used.
'use strict';

(function () {
  const DATA = JSON.parse(document.getElementById('console-data').textContent);
  const SESSION_EXPIRED = '登录已过期，请刷新页面重新登录。';

  // ------------------------------------------------------------------------------------------
  // Helpers

  function el(tag, className, text) {
    const e = document.createElement(tag);
    if (className) e.className = className;
    if (text !== undefined && text !== null) e.textContent = String(text);
    return e;
  }

  function clear(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  // A source id such as "004 第十八条" as 《title》第十八条 (as Knowledge::cite does).
  function cite(source) {
    const s = String(source);
    const space = s.indexOf(' ');
    const id = space < 0 ? s : s.slice(0, space);
    const locator = space < 0 ? '' : s.slice(space + 1).trim();
    const title = DATA.sources[id];
    if (!title) return s;
    return '《' + title + '》' + locator;
  }

  // the reply kinds of ../shared/spec/cli.md, as agents read them in a transcript
  const KIND_LABELS = {
    faq: '问答', dialog: '引导问答', clarify: '追问', smalltalk: '寒暄',
    out_of_scope: '超出范围', unanswered: '未能回答'
  };

  // fetch as JSON: {ok, status, body}; a network failure is {ok: false, status: 0}.
  async function request(method, url, body) {
    const init = { method: method, headers: { Accept: 'application/json' }, credentials: 'same-origin' };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    try {
      const response = await fetch(url, init);
      let parsed = null;
      try {
        parsed = await response.json();
      } catch (_) {
        parsed = null;
      }
      return { ok: response.ok, status: response.status, body: parsed };
    } catch (_) {
      return { ok: false, status: 0, body: null };
    }
  }

  function errorMessage(r) {
    if (r.status === 401) return SESSION_EXPIRED;
    if (r.body && r.body.error && r.body.error.message) return r.body.error.message;
    if (r.status === 0) return '无法连接服务，请检查网络后重试。';
    return '服务暂时不可用，请稍后再试。';
  }

  async function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) {
      try {
        await navigator.clipboard.writeText(text);
        return true;
      } catch (_) {
        // fall through to the textarea
      }
    }
    const area = document.createElement('textarea');
    area.value = text;
    area.setAttribute('readonly', '');
    area.className = 'offscreen';
    document.body.appendChild(area);
    area.select();
    let done = false;
    try {
      done = document.execCommand('copy');
    } catch (_) {
      done = false;
    }
    document.body.removeChild(area);
    return done;
  }

  function copyButton(text) {
    const button = el('button', 'copy', '复制');
    button.type = 'button';
    button.addEventListener('click', async function () {
      const done = await copyText(text);
      button.dataset.copied = done ? 'yes' : 'no';
      button.textContent = done ? '已复制' : '复制失败，请手动选择文字';
      setTimeout(function () { button.textContent = '复制'; }, 1500);
    });
    return button;
  }

  // ------------------------------------------------------------------------------------------
  // Search as you type

  const q = document.getElementById('q');
  const answers = document.getElementById('answers');
  const searchStatus = document.getElementById('search-status');
  const entries = new Map(); // faq id -> entry (a reload of the data shows after a page reload)
  let searchSeq = 0;
  let searchTimer = null;

  async function faqEntry(id) {
    if (entries.has(id)) return entries.get(id);
    const r = await request('GET', '/v1/faq/' + encodeURIComponent(id));
    if (!r.ok || !r.body) return null;
    entries.set(id, r.body);
    return r.body;
  }

  // When the entry was last checked and how reliable its documents are (as_of, tier and
  // provenance of GET /v1/faq/{id}): "核对日期 2026-12-07 · 依据：官方原文（004 2019）…".
  const TIERS = { official: '官方原文', quoted: '转引官方', secondary: '网络资料' };
  function provenanceLine(entry) {
    const docs = [];
    (entry.provenance || []).forEach(function (p) {
      const id = String(p.source).split(' ')[0];
      if (docs.some(function (d) { return d.id === id; })) return;
      docs.push({ id: id, text: id + ' ' + (TIERS[p.tier] || p.tier) + (p.date ? ' ' + p.date : '') });
    });
    return '核对日期 ' + entry.as_of + ' · 依据：' + (TIERS[entry.tier] || entry.tier) +
      (entry.tier === 'secondary' ? '（只有网络资料，请来电者向医保部门确认）' : '') +
      (docs.length ? '（' + docs.map(function (d) { return d.text; }).join('；') + '）' : '');
  }

  function renderAnswer(entry) {
    const li = el('li', 'answer');
    li.dataset.faqId = entry.id;
    li.appendChild(el('h3', 'question', entry.question));
    li.appendChild(el('p', 'answer-text', entry.answer));
    const cited = (entry.sources || []).map(cite).join('；');
    li.appendChild(el('p', 'sources', '来源：' + (cited || '（无）')));
    if (entry.as_of) li.appendChild(el('p', 'provenance', provenanceLine(entry)));
    li.appendChild(copyButton(entry.answer + '\n来源：' + cited));
    return li;
  }

  function renderNoAnswer(result) {
    const li = el('li', 'no-answer');
    li.appendChild(el('p', 'no-answer-text',
      '知识库里没有这个问题的可靠答案，请不要凭猜测回答。' +
      (DATA.hotline ? '可请来电者拨打医保咨询电话 ' + DATA.hotline + '，' : '') +
      '或记录问题后转交。'));
    const hits = result.hits || [];
    if (hits.length > 0) {
      li.appendChild(el('p', 'suggestions-title', '可能相关的问题（仅供参考，未必对题）：'));
      const list = el('ul', 'suggestions');
      hits.forEach(function (h) { list.appendChild(el('li', null, h.question)); });
      li.appendChild(list);
    }
    return li;
  }

  async function runSearch() {
    const text = q.value.trim();
    const seq = ++searchSeq;
    if (!text) {
      clear(answers);
      searchStatus.textContent = '';
      return;
    }
    searchStatus.textContent = '正在搜索…';
    const r = await request('GET', '/v1/faq/search?q=' + encodeURIComponent(text) + '&limit=3');
    if (seq !== searchSeq) return;
    if (!r.ok || !r.body) {
      clear(answers);
      searchStatus.textContent = errorMessage(r);
      return;
    }
    const result = r.body;
    if (!result.answered) {
      clear(answers);
      answers.appendChild(renderNoAnswer(result));
      searchStatus.textContent = '没有找到可靠答案。';
      return;
    }
    const found = await Promise.all((result.hits || []).map(function (h) { return faqEntry(h.id); }));
    if (seq !== searchSeq) return;
    clear(answers);
    found.filter(Boolean).forEach(function (entry) { answers.appendChild(renderAnswer(entry)); });
    searchStatus.textContent = answers.childElementCount > 0
      ? '最相关的 ' + answers.childElementCount + ' 条答案：'
      : '暂时无法读取答案，请稍后再试。';
  }

  q.addEventListener('input', function () {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(runSearch, 250);
  });

  // ------------------------------------------------------------------------------------------
  // Situation form: checklist and estimate

  const form = document.getElementById('situation');
  const checklistBox = document.getElementById('checklist');
  const estimateBox = document.getElementById('estimate');
  const summary = document.getElementById('situation-summary');
  let checklistSeq = 0;
  let estimateSeq = 0;
  let formTimer = null;

  function fields() {
    return Array.prototype.slice.call(form.querySelectorAll('select, input'));
  }

  // the API document's types: whole numbers and booleans as JSON numbers and booleans
  const INTEGER_FIELDS = ['hospital_level', 'admissions_before'];
  const BOOLEAN_FIELDS = ['filed', 'emergency', 'by_proxy', 'mentions_chronic'];

  function typed(name, value) {
    if (INTEGER_FIELDS.indexOf(name) >= 0 && /^[0-9]+$/.test(value)) return Number(value);
    if (BOOLEAN_FIELDS.indexOf(name) >= 0 && (value === 'true' || value === 'false')) {
      return value === 'true';
    }
    return value;
  }

  function inputsFor(kind) {
    const body = {};
    fields().forEach(function (f) {
      const name = f.dataset[kind];
      const value = f.value.trim();
      if (name && value !== '') body[name] = typed(name, value);
    });
    return body;
  }

  function placeholder(box, text) {
    clear(box);
    box.appendChild(el('p', 'placeholder', text));
  }

  function problem(box, title, message) {
    clear(box);
    box.appendChild(el('h3', null, title));
    box.appendChild(el('p', 'error', message));
  }

  function renderSummary() {
    const parts = [];
    fields().forEach(function (f) {
      if (f.value.trim() === '') return;
      const label = form.querySelector('label[for="' + f.id + '"]');
      const value = f.tagName === 'SELECT' ? f.options[f.selectedIndex].textContent : f.value.trim();
      parts.push((label ? label.textContent : f.name) + '：' + value);
    });
    summary.textContent = parts.length ? '来电者情况：' + parts.join('；') : '';
  }

  function list(title, className, rows) {
    const section = el('div', className);
    section.appendChild(el('h4', null, title));
    const ol = el('ol');
    rows.forEach(function (row) {
      const li = el('li');
      li.dataset.id = row.id;
      li.appendChild(el('span', 'text', row.text));
      if (row.source) li.appendChild(el('span', 'source', '（来源：' + cite(row.source) + '）'));
      ol.appendChild(li);
    });
    section.appendChild(ol);
    return section;
  }

  function renderChecklist(c) {
    clear(checklistBox);
    checklistBox.appendChild(el('h3', null, '材料清单'));
    const byId = {};
    (c.items || []).forEach(function (item) { byId[item.id] = item; });
    const rows = function (ids) {
      return ids.map(function (id) { return byId[id] || { id: id, text: id, source: '' }; });
    };
    const texts = function (ids, table) {
      return ids.map(function (id) {
        const t = table[id];
        return t ? { id: id, text: t.text, source: t.source } : { id: id, text: id, source: '' };
      });
    };
    if (c.filing.length) checklistBox.appendChild(list('备案所需材料', 'filing', rows(c.filing)));
    if (c.manual.length) checklistBox.appendChild(list('零星报销所需材料', 'manual', rows(c.manual)));
    if (!c.filing.length && !c.manual.length) {
      checklistBox.appendChild(el('p', 'none', '按目前选择的情况，不需要另外准备备案或零星报销材料。'));
    }
    if (c.warnings.length) checklistBox.appendChild(list('注意事项', 'warnings', texts(c.warnings, DATA.warnings)));
    if (c.channels.length) checklistBox.appendChild(list('办理渠道', 'channels', texts(c.channels, DATA.channels)));
  }

  const ROUTES = { direct: '联网医院直接结算', manual: '先垫付，回参保地零星报销' };

  function row(table, label, value) {
    const tr = el('tr');
    tr.appendChild(el('th', null, label));
    tr.appendChild(el('td', 'money', value));
    table.appendChild(tr);
  }

  function renderEstimate(e) {
    clear(estimateBox);
    estimateBox.appendChild(el('h3', null, '报销估算（仅供参考）'));
    const summaryTable = el('table', 'estimate-summary');
    row(summaryTable, '政策范围内费用', e.eligible + ' 元');
    row(summaryTable, '目录外全自费', e.self_pay + ' 元');
    row(summaryTable, '乙类项目先自付', e.class_b_copay + ' 元');
    row(summaryTable, '起付线', e.deductible_applied + ' 元');
    row(summaryTable, '医保基金支付', e.fund_pays + ' 元' + (e.cap_applied ? '（已到年度最高支付限额）' : ''));
    row(summaryTable, '个人负担', e.patient_pays + ' 元');
    row(summaryTable, '结算方式', ROUTES[e.route] || e.route);
    estimateBox.appendChild(summaryTable);

    if (e.bands && e.bands.length) {
      const bands = el('table', 'bands');
      const head = el('tr');
      ['费用段（元）', '本段金额', '支付比例', '系数', '基金支付'].forEach(function (h) {
        head.appendChild(el('th', null, h));
      });
      bands.appendChild(head);
      e.bands.forEach(function (b) {
        const tr = el('tr');
        tr.appendChild(el('td', null, b.lower + ' – ' + (b.upper === null || b.upper === undefined ? '以上' : b.upper)));
        tr.appendChild(el('td', 'money', b.portion));
        tr.appendChild(el('td', null, b.rate));
        tr.appendChild(el('td', null, b.factor));
        tr.appendChild(el('td', 'money', b.amount));
        bands.appendChild(tr);
      });
      estimateBox.appendChild(bands);
    }
    if (e.rules && e.rules.length) {
      estimateBox.appendChild(list('依据', 'rules', e.rules.map(function (r, i) {
        return { id: String(i), text: r, source: '' };
      })));
    }
    estimateBox.appendChild(el('p', 'disclaimer', e.disclaimer));
  }

  async function updateChecklist() {
    const body = inputsFor('checklist');
    const seq = ++checklistSeq;
    if (Object.keys(body).length === 0) {
      placeholder(checklistBox, '选择来电者的情况后，这里显示所需材料和办理渠道。');
      return;
    }
    const r = await request('POST', '/v1/checklist', body);
    if (seq !== checklistSeq) return;
    if (r.ok && r.body) {
      renderChecklist(r.body);
    } else {
      problem(checklistBox, '材料清单', errorMessage(r));
    }
  }

  async function updateEstimate() {
    const body = inputsFor('estimate');
    const seq = ++estimateSeq;
    if (!body.total) {
      placeholder(estimateBox, '填写参保地、就医类型、医院等级、备案情况和医疗总费用后，这里显示报销估算。');
      return;
    }
    const r = await request('POST', '/v1/estimate', body);
    if (seq !== estimateSeq) return;
    if (r.ok && r.body) {
      renderEstimate(r.body);
    } else {
      problem(estimateBox, '报销估算', errorMessage(r));
    }
  }

  function update() {
    renderSummary();
    updateChecklist();
    updateEstimate();
  }

  function scheduleUpdate() {
    clearTimeout(formTimer);
    formTimer = setTimeout(update, 200);
  }

  form.addEventListener('change', scheduleUpdate);
  form.addEventListener('input', scheduleUpdate);

  // What the agent types about the caller ("我爸张家港退休的，在上海住院") fills the form the
  // same way a conversation fills its slots; every field stays editable.
  const callerText = document.getElementById('caller-text');
  const callerStatus = document.getElementById('caller-status');
  let callerTimer = null;
  let callerSeq = 0;
  async function understandCaller() {
    const text = callerText.value.trim();
    if (text === '') { callerStatus.textContent = ''; return; }
    const seq = ++callerSeq;
    const r = await request('POST', '/v1/agent/situation', { text: text });
    if (seq !== callerSeq) return;
    if (!r.ok || !r.body) { callerStatus.textContent = errorMessage(r); return; }
    const slots = r.body.slots || {};
    const filled = [];
    Object.keys(slots).forEach(function (slot) {
      const f = form.elements[slot];
      if (!f || f.value === slots[slot]) return;
      f.value = slots[slot];
      if (f.value === slots[slot]) filled.push(slot);
    });
    callerStatus.textContent = filled.length ? '已根据描述填写 ' + filled.length + ' 项，可手动修改。' : '描述中没有识别到新的情况。';
    if (filled.length) scheduleUpdate();
  }
  callerText.addEventListener('input', function () {
    clearTimeout(callerTimer);
    callerTimer = setTimeout(understandCaller, 300);
  });
  form.addEventListener('reset', function () { setTimeout(update, 0); });
  form.addEventListener('submit', function (event) { event.preventDefault(); update(); });

  document.getElementById('print').addEventListener('click', function () { window.print(); });

  // ------------------------------------------------------------------------------------------
  // Unanswered questions and transcripts

  const unansweredList = document.getElementById('unanswered');
  const unansweredStatus = document.getElementById('unanswered-status');
  const transcriptBox = document.getElementById('transcript');

  function time(ms) {
    try {
      return new Date(ms).toLocaleString('zh-CN', { hour12: false });
    } catch (_) {
      return String(ms);
    }
  }

  async function showTranscript(sessionId) {
    transcriptBox.hidden = false;
    placeholder(transcriptBox, '正在读取对话…');
    const r = await request('GET', '/v1/agent/sessions/' + encodeURIComponent(sessionId) + '/transcript');
    if (!r.ok || !r.body) {
      problem(transcriptBox, '对话记录', errorMessage(r));
      return;
    }
    clear(transcriptBox);
    transcriptBox.appendChild(el('h3', null, '对话记录'));
    const ol = el('ol', 'lines');
    (r.body.transcript || []).forEach(function (line) {
      const li = el('li', 'line ' + (line.role === 'user' ? 'user' : 'assistant'));
      li.appendChild(el('span', 'role', line.role === 'user' ? '用户：' : '助手：'));
      if (line.kind && KIND_LABELS[line.kind]) li.appendChild(el('span', 'kind', '［' + KIND_LABELS[line.kind] + '］'));
      li.appendChild(el('span', 'text', line.text));
      ol.appendChild(li);
    });
    transcriptBox.appendChild(ol);
  }

  async function loadUnanswered() {
    unansweredStatus.textContent = '正在读取…';
    const r = await request('GET', '/v1/agent/unanswered?limit=20');
    clear(unansweredList);
    if (!r.ok || !r.body) {
      unansweredStatus.textContent = errorMessage(r);
      return;
    }
    const questions = r.body.questions || [];
    unansweredStatus.textContent = questions.length ? '' : '暂时没有未能回答的问题。';
    questions.forEach(function (item) {
      const li = el('li', 'unanswered-item');
      li.appendChild(el('span', 'when', time(item.created_at)));
      li.appendChild(el('span', 'question', item.question));
      if (item.session_id) {
        const button = el('button', 'show-transcript', '查看对话');
        button.type = 'button';
        button.addEventListener('click', function () { showTranscript(item.session_id); });
        li.appendChild(button);
      }
      li.appendChild(copyButton(item.question));
      unansweredList.appendChild(li);
    });
  }

  document.getElementById('refresh-unanswered').addEventListener('click', loadUnanswered);
  loadUnanswered();
})();
