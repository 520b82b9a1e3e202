// The hotline agents' console (served by src/channels/console.rs), built for a live call:
// the caller's story fills the form, the form asks for what is missing, and the answer, the
// checklist and the estimate (each with a sentence to read out and a text message) follow.
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

  function placeholder(box, text) {
    clear(box);
    box.appendChild(el('p', 'placeholder', text));
  }

  function slotTitle(slot) {
    const s = DATA.slots[slot];
    return s ? s.title : slot;
  }

  function valueLabel(slot, value) {
    const s = DATA.slots[slot];
    return s && s.values && s.values[value] ? s.values[value] : value;
  }

  // the reply kinds of ../shared/spec/cli.md, as agents read them in a transcript
  const KIND_LABELS = {
    faq: '问答', dialog: '引导问答', clarify: '追问', smalltalk: '寒暄',
    out_of_scope: '超出范围', unanswered: '未能回答'
  };
  const CHANNEL_LABELS = { http: '网页/API', telegram: 'Telegram', wechat: '微信公众号', terminal: '终端' };

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

  function copyButton(text, label, className) {
    const name = label || '复制';
    const button = el('button', 'copy' + (className ? ' ' + className : ''), name);
    button.type = 'button';
    button.addEventListener('click', async function () {
      const done = await copyText(text);
      button.dataset.copied = done ? 'yes' : 'no';
      button.textContent = done ? '已复制' : '复制失败，请手动选择文字';
      setTimeout(function () { button.textContent = name; }, 1500);
    });
    return button;
  }

  // "可以这样说" and the text message, with their copy buttons
  function sayBlock(say, sms) {
    const box = el('div', 'say-block');
    const p = el('p', 'say');
    p.appendChild(el('span', 'say-label', '可以这样说：'));
    p.appendChild(el('span', 'say-text', say));
    box.appendChild(p);
    const actions = el('p', 'say-actions');
    actions.appendChild(copyButton(say, '复制这句话', 'copy-say'));
    if (sms) {
      actions.appendChild(copyButton(sms, '复制短信（' + Array.from(sms).length + '字）', 'copy-sms'));
      const details = el('details', 'sms');
      details.appendChild(el('summary', null, '看短信内容'));
      details.appendChild(el('p', 'sms-text', sms));
      actions.appendChild(details);
    }
    box.appendChild(actions);
    return box;
  }

  function time(ms) {
    try {
      return new Date(ms).toLocaleString('zh-CN', { hour12: false });
    } catch (_) {
      return String(ms);
    }
  }

  // ------------------------------------------------------------------------------------------
  // The situation: form fields, where each value came from, the caller's story

  const form = document.getElementById('situation');
  const callerText = document.getElementById('caller-text');
  const callerStatus = document.getElementById('caller-status');
  const missingBox = document.getElementById('missing');
  const moreFields = document.getElementById('more-fields');
  const summary = document.getElementById('situation-summary');
  const source = {}; // slot -> 'text' | 'hand' | 'inferred'
  let extra = {}; // what the story says that has no field (patient, places)
  let lastText = '';
  let callerSeq = 0;
  let callerTimer = null;

  function fields() {
    return Array.prototype.slice.call(form.querySelectorAll('select, input'));
  }

  function field(slot) {
    return form.elements[slot] || null;
  }

  function formSlots() {
    const slots = {};
    Object.keys(extra).forEach(function (k) { slots[k] = extra[k]; });
    fields().forEach(function (f) {
      const v = f.value.trim();
      if (v !== '') slots[f.name] = v;
    });
    return slots;
  }

  function handSlots() {
    const slots = {};
    fields().forEach(function (f) {
      if (source[f.name] === 'hand' && f.value.trim() !== '') slots[f.name] = f.value.trim();
    });
    return slots;
  }

  const MARKS = { text: '描述', hand: '手填', inferred: '推断' };

  function renderMarks() {
    fields().forEach(function (f) {
      const wrap = f.closest('.field');
      if (!wrap) return;
      const s = f.value.trim() === '' ? '' : (source[f.name] || '');
      if (s) wrap.dataset.source = s; else delete wrap.dataset.source;
      const mark = wrap.querySelector('.mark');
      if (mark) mark.textContent = s ? MARKS[s] : '';
    });
    const moreFilled = Array.prototype.some.call(moreFields.querySelectorAll('select, input'), function (f) {
      return f.value.trim() !== '';
    });
    if (moreFilled) moreFields.open = true;
  }

  function setField(f, value, how) {
    f.value = value;
    if (f.value !== value) return false; // not one of its values
    source[f.name] = how;
    return true;
  }

  // what the reader says (`slots`: the whole situation after the text; `inferred`: what
  // follows from it) applied to the form; hand-set fields stay as the agent set them
  function applyReading(slots, inferred) {
    let filled = 0;
    const kept = [];
    const names = {};
    fields().forEach(function (f) {
      names[f.name] = true;
      const v = slots[f.name];
      if (source[f.name] === 'hand' && f.value.trim() !== '') {
        if (v !== undefined && v !== f.value) kept.push(slotTitle(f.name) + '（描述说“' + valueLabel(f.name, v) + '”）');
        return;
      }
      if (v === undefined) {
        if (source[f.name] === 'text') {
          f.value = '';
          delete source[f.name];
        }
        return;
      }
      if (f.value !== v) {
        if (setField(f, v, 'text')) filled += 1;
      } else if (!source[f.name] || source[f.name] === 'inferred') {
        source[f.name] = 'text';
      }
    });
    extra = {};
    Object.keys(slots).forEach(function (k) { if (!names[k]) extra[k] = slots[k]; });
    Object.keys(inferred || {}).forEach(function (k) {
      const f = field(k);
      if (f && f.value.trim() === '') setField(f, inferred[k], 'inferred');
    });
    fields().forEach(function (f) {
      if (source[f.name] === 'inferred' && (inferred || {})[f.name] === undefined && slots[f.name] === undefined) {
        f.value = '';
        delete source[f.name];
      }
    });
    let status = filled ? '已根据描述填写或更新 ' + filled + ' 项（标“描述”）。' : '描述中没有新的情况。';
    if (kept.length) status += '手填的没有改动：' + kept.join('、') + '。';
    callerStatus.textContent = status;
    renderMarks();
  }

  // where the last clause of `text` ended (-1: none ended)
  function lastClauseEnd(text) {
    let at = -1;
    '。！？；，,;!?\n'.split('').forEach(function (c) { at = Math.max(at, text.lastIndexOf(c)); });
    return at;
  }

  async function readCaller() {
    const text = callerText.value;
    const seq = ++callerSeq;
    if (text.trim() === '') {
      lastText = '';
      applyReading(handSlots(), {});
      callerStatus.textContent = '';
      scheduleCall();
      return;
    }
    // text added at the end is read on top of what is known, from the start of the clause
    // it continues (typing pauses mid-word): only what it states changes, a correction
    // replaces; any other edit reads the whole story again
    const appended = lastText !== '' && text.startsWith(lastText) && text.length > lastText.length;
    if (lastText !== '' && text === lastText) return;
    const clauseStart = appended ? lastClauseEnd(lastText) : -1;
    const added = clauseStart >= 0 ? text.slice(clauseStart + 1) : text;
    const body = clauseStart >= 0 ? { text: added, known: formSlots() } : { text: text, known: handSlots() };
    const r = await request('POST', '/v1/agent/situation', body);
    if (seq !== callerSeq) return;
    if (!r.ok || !r.body) { callerStatus.textContent = errorMessage(r); return; }
    lastText = text;
    applyReading(r.body.slots || {}, r.body.inferred || {});
    scheduleCall();
  }

  callerText.addEventListener('input', function () {
    clearTimeout(callerTimer);
    callerTimer = setTimeout(readCaller, 300);
  });

  // the agent's own changes: marked as such, kept when the story is read again
  function handChange(event) {
    const f = event.target;
    // only the agent's own edits fire these: values set by the script fire nothing
    if (!f || !f.name) return;
    if (f.value.trim() === '') delete source[f.name]; else source[f.name] = 'hand';
    renderMarks();
    scheduleCall();
  }
  form.addEventListener('change', handChange);
  form.addEventListener('input', function (event) {
    if (event.target && event.target.tagName === 'INPUT') handChange(event);
  });
  form.addEventListener('submit', function (event) { event.preventDefault(); scheduleCall(); });
  form.addEventListener('reset', function () {
    setTimeout(function () {
      Object.keys(source).forEach(function (k) { delete source[k]; });
      extra = {};
      renderMarks();
      scheduleCall();
    }, 0);
  });

  function renderSummary(text) {
    summary.textContent = text ? '来电者情况：' + text : '';
  }

  // ------------------------------------------------------------------------------------------
  // The call: missing fields, the answer, the checklist and the estimate

  const checklistBox = document.getElementById('checklist');
  const estimateBox = document.getElementById('estimate');
  const situationAnswer = document.getElementById('situation-answer');
  const printAnswer = document.getElementById('print-answer');
  let callSeq = 0;
  let callTimer = null;

  function scheduleCall() {
    clearTimeout(callTimer);
    callTimer = setTimeout(updateCall, 150);
  }

  function renderMissing(view) {
    clear(missingBox);
    fields().forEach(function (f) {
      const wrap = f.closest('.field');
      if (wrap) wrap.classList.remove('is-missing', 'has-problem');
    });
    const missing = view.missing || [];
    const problems = view.problems || [];
    if (!missing.length && !problems.length) {
      missingBox.hidden = true;
      return;
    }
    missingBox.hidden = false;
    if (missing.length) {
      missingBox.appendChild(el('h3', null, '还需要问来电者（' + missing.length + ' 项）'));
      const list = el('ol', 'missing-list');
      missing.forEach(function (m) {
        const li = el('li', 'missing-item');
        li.dataset.slot = m.slot;
        li.title = m.needed_for.join('、') + '需要';
        const head = el('p', 'missing-head');
        head.appendChild(el('strong', null, m.title));
        head.appendChild(el('span', 'ask', '问：' + m.ask));
        li.appendChild(head);
        if (m.choices && m.choices.length) {
          const chips = el('p', 'chips');
          m.choices.forEach(function (c) {
            const b = el('button', 'chip', c.label);
            b.type = 'button';
            b.dataset.slot = m.slot;
            b.dataset.value = c.value;
            b.addEventListener('click', function () {
              const f = field(m.slot);
              if (!f) return;
              setField(f, c.value, 'hand');
              renderMarks();
              scheduleCall();
            });
            chips.appendChild(b);
          });
          li.appendChild(chips);
        }
        list.appendChild(li);
        const f = field(m.slot);
        if (f && f.closest('.field')) f.closest('.field').classList.add('is-missing');
        if (f && moreFields.contains(f)) moreFields.open = true;
      });
      missingBox.appendChild(list);
    }
    problems.forEach(function (p) {
      missingBox.appendChild(el('p', 'error', slotTitle(p.slot) + '：' + p.message));
      const f = field(p.slot);
      if (f && f.closest('.field')) f.closest('.field').classList.add('has-problem');
    });
  }

  // the channel's name: its text up to a bracket or a colon
  function shortName(text) {
    const m = /^[^（：(]+/.exec(text);
    return m ? m[0] : text;
  }

  function renderChecklist(c, missing) {
    clear(checklistBox);
    checklistBox.appendChild(el('h3', 'print-title', '材料清单'));
    if (!c) {
      const waiting = (missing || []).filter(function (m) { return m.needed_for.indexOf('材料清单') >= 0; });
      checklistBox.appendChild(el('p', 'placeholder', waiting.length
        ? '问清' + waiting.map(function (m) { return m.title; }).join('、') + '后，这里显示要准备的材料。'
        : '这里显示来电者要准备的材料和办理渠道。'));
      return;
    }
    if (c.pending && c.pending.length) {
      checklistBox.appendChild(el('p', 'pending', '下面是不管' + c.pending.join('、') +
        '怎样都要准备的；问清后补上其余的。'));
    }
    checklistBox.appendChild(sayBlock(c.say, c.sms));
    const sources = [];
    c.sections.forEach(function (s) {
      s.rows.forEach(function (r) {
        const line = r.text + '（' + r.source + '）';
        if (r.source && sources.indexOf(line) < 0) sources.push(line);
      });
      const section = el('div', 'part ' + s.kind);
      section.appendChild(el('h4', null, s.title));
      if (s.kind === 'channels') {
        // the channels' names in a line; what each says is with the sources
        const p = el('p', 'channels-line');
        s.rows.forEach(function (row, i) {
          const span = el('span', 'channel', shortName(row.text));
          span.dataset.id = row.id;
          span.title = row.text;
          if (i > 0) p.appendChild(document.createTextNode('；'));
          p.appendChild(span);
        });
        section.appendChild(p);
      } else {
        const ol = el(s.kind === 'warnings' ? 'ul' : 'ol');
        s.rows.forEach(function (row) {
          const li = el('li', null, row.text);
          li.dataset.id = row.id;
          ol.appendChild(li);
        });
        section.appendChild(ol);
      }
      checklistBox.appendChild(section);
    });
    if (sources.length) {
      const details = el('details', 'sources-all');
      details.appendChild(el('summary', null, '每项的说明与来源（' + sources.length + '）'));
      const ol = el('ol', 'sources');
      sources.forEach(function (line) { ol.appendChild(el('li', null, line)); });
      details.appendChild(ol);
      checklistBox.appendChild(details);
    }
  }

  function money(s) {
    const n = Number(s);
    if (!isFinite(n)) return String(s);
    return n.toLocaleString('zh-CN', { maximumFractionDigits: 2 }) + ' 元';
  }

  function renderEstimate(e, view) {
    if (!e) {
      if (view && view.estimate_note) {
        clear(estimateBox);
        estimateBox.appendChild(el('h3', null, '报销估算'));
        estimateBox.appendChild(el('p', 'error', view.estimate_note));
        return;
      }
      const waiting = ((view && view.missing) || []).filter(function (m) { return m.needed_for.indexOf('报销估算') >= 0; });
      clear(estimateBox);
      estimateBox.appendChild(el('h3', null, '报销估算'));
      estimateBox.appendChild(el('p', 'placeholder', waiting.length
        ? '问清' + waiting.map(function (m) { return m.title; }).join('、') + '后，这里显示医保大概能报多少。'
        : '说了费用，这里就显示医保大概能报多少。'));
      return;
    }
    clear(estimateBox);
    estimateBox.appendChild(el('h3', null, '报销估算（仅供参考）'));
    estimateBox.appendChild(sayBlock(e.say, e.sms));
    if (e.note) estimateBox.appendChild(el('p', 'note', e.note));
    const table = el('table', 'cases');
    const head = el('tr');
    head.appendChild(el('th', null, '总费用 ' + money(e.cases[0].estimate.fund_pays * 1 + e.cases[0].estimate.patient_pays * 1)));
    e.cases.forEach(function (c, i) {
      const th = el('th', i === 0 ? 'now' : 'after', c.label);
      head.appendChild(th);
    });
    table.appendChild(head);
    [['医保大约报', 'fund_pays'], ['自己负担约', 'patient_pays']].forEach(function (row) {
      const tr = el('tr');
      tr.appendChild(el('th', null, row[0]));
      e.cases.forEach(function (c) { tr.appendChild(el('td', 'money', money(c.estimate[row[1]]))); });
      table.appendChild(tr);
    });
    const route = el('tr');
    route.appendChild(el('th', null, '怎么结算'));
    e.cases.forEach(function (c) { route.appendChild(el('td', 'route', c.route)); });
    table.appendChild(route);
    estimateBox.appendChild(table);

    const basis = el('div', 'basis');
    basis.appendChild(el('h4', null, '依据'));
    const ol = el('ol');
    e.basis.forEach(function (line) { ol.appendChild(el('li', null, line)); });
    basis.appendChild(ol);
    estimateBox.appendChild(basis);

    const details = el('details', 'full-rules');
    details.appendChild(el('summary', null, '全部依据与计算明细（' + e.rules.length + ' 条）'));
    e.cases.forEach(function (c) {
      const bands = c.estimate.bands || [];
      if (!bands.length) return;
      details.appendChild(el('p', 'case-title', c.label + '：'));
      const t = el('table', 'bands');
      const h = el('tr');
      ['费用段（元）', '本段金额', '比例', '系数', '基金支付'].forEach(function (x) { h.appendChild(el('th', null, x)); });
      t.appendChild(h);
      bands.forEach(function (b) {
        const tr = el('tr');
        tr.appendChild(el('td', null, b.lower + ' 至 ' + (b.upper === null || b.upper === undefined ? '以上' : b.upper)));
        tr.appendChild(el('td', 'money', b.portion));
        tr.appendChild(el('td', null, b.rate));
        tr.appendChild(el('td', null, b.factor));
        tr.appendChild(el('td', 'money', b.amount));
        t.appendChild(tr);
      });
      details.appendChild(t);
    });
    const rules = el('ol', 'rules');
    e.rules.forEach(function (r) { rules.appendChild(el('li', null, r)); });
    details.appendChild(rules);
    estimateBox.appendChild(details);
    estimateBox.appendChild(el('p', 'disclaimer', e.disclaimer));
  }

  // When the entry was last checked and how reliable its documents are:
  // "核对日期 2026-12-07 · 依据：官方原文（004 官方原文 2019；…）".
  const TIERS = { official: '官方原文', quoted: '转引官方', secondary: '网络资料' };
  function provenanceLine(entry) {
    const docs = (entry.documents || []).map(function (d) {
      return d.id + ' ' + (TIERS[d.tier] || d.tier) + (d.date ? ' ' + d.date : '');
    });
    return '核对日期 ' + entry.as_of + ' · 依据：' + (TIERS[entry.tier] || entry.tier) +
      (entry.tier === 'secondary' ? '（只有网络资料，请来电者向医保部门确认）' : '') +
      (docs.length ? '（' + docs.join('；') + '）' : '');
  }

  // an FAQ entry for the caller: what to say, the text message, the full answer folded
  function renderEntry(entry, open) {
    const art = el('article', 'entry');
    art.dataset.faqId = entry.id;
    art.appendChild(el('h3', 'question', entry.question));
    art.appendChild(sayBlock(entry.say, entry.sms));
    const details = el('details', 'full');
    if (open) details.open = true;
    details.appendChild(el('summary', null, '完整解答' + (entry.region ? '（' + entry.region + '参保在前）' : '')));
    entry.paragraphs.forEach(function (p) { details.appendChild(el('p', 'answer-text', p)); });
    if (entry.others.length) {
      const others = el('details', 'others');
      others.appendChild(el('summary', null, '其他地区参保（' + entry.others.length + ' 段）'));
      entry.others.forEach(function (p) { others.appendChild(el('p', 'answer-text', p)); });
      details.appendChild(others);
    }
    details.appendChild(el('p', 'sources', '来源：' + (entry.sources.join('；') || '（无）')));
    if (entry.as_of) details.appendChild(el('p', 'provenance', provenanceLine(entry)));
    details.appendChild(copyButton(entry.paragraphs.join('\n\n') + '\n来源：' + entry.sources.join('；'), '复制完整解答'));
    art.appendChild(details);
    if (entry.related && entry.related.length) {
      const rel = el('p', 'related');
      rel.appendChild(el('span', null, '相关：'));
      entry.related.forEach(function (r) { rel.appendChild(entryLink(r.id, r.question)); });
      art.appendChild(rel);
    }
    return art;
  }

  function entryLink(id, question) {
    const a = el('a', 'entry-link', question);
    a.href = '#';
    a.title = question;
    a.dataset.faqId = id;
    a.addEventListener('click', function (event) {
      event.preventDefault();
      openEntry(id);
    });
    return a;
  }

  let lastRendered = '';

  function renderSituationAnswer(view) {
    clear(situationAnswer);
    printAnswer.textContent = '';
    if (!view || !view.answer) {
      situationAnswer.appendChild(el('p', 'placeholder', '输入来电者的情况后，这里显示该怎么答复。'));
      return;
    }
    situationAnswer.appendChild(renderEntry(view.answer, false));
    printAnswer.textContent = '答复要点：' + view.answer.say;
  }

  async function updateCall() {
    const slots = formSlots();
    const seq = ++callSeq;
    renderMarks();
    if (Object.keys(slots).length === 0) {
      lastRendered = '';
      renderSummary('');
      renderMissing({});
      renderSituationAnswer(null);
      renderChecklist(null, []);
      renderEstimate(null, null);
      return;
    }
    const r = await request('POST', '/v1/agent/call', { slots: slots });
    if (seq !== callSeq) return;
    if (!r.ok || !r.body) {
      clear(missingBox);
      missingBox.hidden = false;
      missingBox.appendChild(el('p', 'error', errorMessage(r)));
      return;
    }
    const view = r.body;
    // the same view again (the story re-read without news): nothing re-rendered, so what
    // the agent opened stays open
    const key = JSON.stringify(view);
    if (key === lastRendered) return;
    lastRendered = key;
    renderSummary(view.summary);
    renderMissing(view);
    renderSituationAnswer(view);
    renderChecklist(view.checklist, view.missing);
    renderEstimate(view.estimate, view);
  }

  // ------------------------------------------------------------------------------------------
  // Search for agents

  const q = document.getElementById('q');
  const answers = document.getElementById('answers');
  const searchStatus = document.getElementById('search-status');
  let searchSeq = 0;
  let searchTimer = null;

  function searching(on) {
    situationAnswer.hidden = on;
  }

  async function runSearch() {
    const text = q.value.trim();
    const seq = ++searchSeq;
    if (!text) {
      clear(answers);
      searchStatus.textContent = '';
      searching(false);
      return;
    }
    searching(true);
    searchStatus.textContent = '正在搜索…';
    const r = await request('POST', '/v1/agent/search', { q: text, slots: formSlots() });
    if (seq !== searchSeq) return;
    clear(answers);
    if (!r.ok || !r.body) {
      searchStatus.textContent = errorMessage(r);
      return;
    }
    const found = r.body;
    searchStatus.textContent = '';
    if (found.status === 'answered') {
      searchStatus.textContent = '最相关的 ' + found.entries.length + ' 条（Esc 清空，回到来电者的答复）：';
      found.entries.forEach(function (entry, i) { answers.appendChild(renderEntry(entry, false)); });
      return;
    }
    const box = el('div', 'notice ' + found.status);
    box.appendChild(el('p', 'notice-text', found.message));
    if (found.referral) box.appendChild(el('p', 'referral', found.referral));
    answers.appendChild(box);
    if (found.status === 'plausible') {
      found.entries.forEach(function (entry) {
        const art = renderEntry(entry, false);
        art.classList.add('plausible');
        answers.appendChild(art);
      });
    }
  }

  async function openEntry(id) {
    const r = await request('POST', '/v1/agent/entry', { id: id, slots: formSlots() });
    if (!r.ok || !r.body) {
      searchStatus.textContent = errorMessage(r);
      return;
    }
    searchSeq += 1; // a search still on its way no longer applies
    searching(true);
    clear(answers);
    searchStatus.textContent = '相关条目（Esc 回到来电者的答复）：';
    answers.appendChild(renderEntry(r.body, true));
  }

  function clearSearch() {
    q.value = '';
    searchSeq += 1;
    clear(answers);
    searchStatus.textContent = '';
    searching(false);
  }

  q.addEventListener('input', function () {
    clearTimeout(searchTimer);
    searchTimer = setTimeout(runSearch, 250);
  });

  // ------------------------------------------------------------------------------------------
  // Keys, a new call, printing

  function typing(target) {
    return target && (target.tagName === 'TEXTAREA' || target.tagName === 'SELECT' ||
      (target.tagName === 'INPUT' && target.type !== 'button' && target.type !== 'submit'));
  }

  function newCall() {
    callerText.value = '';
    lastText = '';
    callerSeq += 1;
    callerStatus.textContent = '';
    HTMLFormElement.prototype.reset.call(form);
    Object.keys(source).forEach(function (k) { delete source[k]; });
    extra = {};
    moreFields.open = false;
    clearSearch();
    transcriptBox.hidden = true;
    clear(transcriptBox);
    renderMarks();
    updateCall();
    callerText.focus();
  }

  document.getElementById('new-call').addEventListener('click', newCall);

  document.addEventListener('keydown', function (event) {
    if (event.key === '/' && !typing(event.target) && !event.ctrlKey && !event.metaKey && !event.altKey) {
      event.preventDefault();
      q.focus();
      q.select();
      return;
    }
    if (event.key === 'Escape' && (event.target === q || !typing(event.target))) {
      if (q.value !== '' || answers.childElementCount > 0) {
        event.preventDefault();
        clearSearch();
      }
      return;
    }
    if (event.altKey && (event.key === 'n' || event.key === 'N' || event.code === 'KeyN')) {
      event.preventDefault();
      newCall();
    }
  });

  document.getElementById('print').addEventListener('click', function () { window.print(); });

  // ------------------------------------------------------------------------------------------
  // Caller history, transcripts and the inbox

  const unansweredList = document.getElementById('unanswered');
  const unansweredStatus = document.getElementById('unanswered-status');
  const transcriptBox = document.getElementById('transcript');
  const historyForm = document.getElementById('history-form');
  const historyInput = document.getElementById('history-q');
  const historyList = document.getElementById('history');
  const historyStatus = document.getElementById('history-status');

  function channelLabel(c) {
    return c ? (CHANNEL_LABELS[c] || c) : '渠道未记录';
  }

  async function showTranscript(sessionId) {
    transcriptBox.hidden = false;
    placeholder(transcriptBox, '正在读取对话…');
    const r = await request('GET', '/v1/agent/sessions/' + encodeURIComponent(sessionId) + '/transcript');
    if (!r.ok || !r.body) {
      clear(transcriptBox);
      transcriptBox.appendChild(el('h2', null, '对话记录'));
      transcriptBox.appendChild(el('p', 'error', errorMessage(r)));
      return;
    }
    clear(transcriptBox);
    transcriptBox.appendChild(el('h2', null, '对话记录'));
    transcriptBox.appendChild(el('p', 'hint', '会话号 ' + sessionId));
    const ol = el('ol', 'lines');
    (r.body.transcript || []).forEach(function (line) {
      const li = el('li', 'line ' + (line.role === 'user' ? 'user' : 'assistant'));
      const meta = el('span', 'meta', time(line.created_at) + ' · ' + channelLabel(line.channel));
      li.appendChild(meta);
      li.appendChild(el('span', 'role', line.role === 'user' ? '用户：' : '助手：'));
      if (line.kind && KIND_LABELS[line.kind]) li.appendChild(el('span', 'kind', '［' + KIND_LABELS[line.kind] + '］'));
      li.appendChild(el('span', 'text', line.text));
      ol.appendChild(li);
    });
    transcriptBox.appendChild(ol);
    transcriptBox.scrollIntoView({ block: 'nearest' });
  }

  historyForm.addEventListener('submit', async function (event) {
    event.preventDefault();
    const id = historyInput.value.trim();
    clear(historyList);
    if (!id) { historyStatus.textContent = '请输入会话号或来电者ID。'; return; }
    historyStatus.textContent = '正在查找…';
    const r = await request('GET', '/v1/agent/conversations?q=' + encodeURIComponent(id));
    if (!r.ok || !r.body) { historyStatus.textContent = errorMessage(r); return; }
    const found = r.body.conversations || [];
    historyStatus.textContent = found.length ? '找到 ' + found.length + ' 段对话：' : '没有找到这个会话号或来电者的对话。';
    found.forEach(function (c) {
      const li = el('li', 'history-item');
      li.appendChild(el('span', 'when', time(c.first_at) + ' 至 ' + time(c.last_at)));
      li.appendChild(el('span', 'channel', channelLabel(c.channel)));
      li.appendChild(el('span', 'count', c.lines + ' 句'));
      const b = el('button', 'show-transcript', '查看对话');
      b.type = 'button';
      b.addEventListener('click', function () { showTranscript(c.session_id); });
      li.appendChild(b);
      historyList.appendChild(li);
    });
  });

  function renderInboxItem(li, item) {
    clear(li);
    li.dataset.id = item.id;
    li.classList.toggle('handled', !!item.handled_at);
    const kind = item.kind === 'out_of_scope' ? 'out_of_scope' : 'unanswered';
    li.appendChild(el('span', 'badge ' + kind, kind === 'out_of_scope' ? '超出范围' : '未能回答'));
    li.appendChild(el('span', 'when', time(item.created_at)));
    li.appendChild(el('span', 'question', item.question));
    const actions = el('span', 'actions');
    if (item.session_id) {
      const show = el('button', 'show-transcript', '查看对话');
      show.type = 'button';
      show.addEventListener('click', function () { showTranscript(item.session_id); });
      actions.appendChild(show);
    }
    actions.appendChild(copyButton(item.question));
    const toggle = el('button', 'mark-handled', item.handled_at ? '改为未处理' : '标为已处理');
    toggle.type = 'button';
    toggle.addEventListener('click', async function () {
      toggle.disabled = true;
      const r = await request('POST', '/v1/agent/unanswered/' + encodeURIComponent(item.id) + '/handled',
        { handled: !item.handled_at });
      toggle.disabled = false;
      if (!r.ok || !r.body) { unansweredStatus.textContent = errorMessage(r); return; }
      renderInboxItem(li, r.body);
      inboxStatus();
    });
    actions.appendChild(toggle);
    li.appendChild(actions);
    if (item.handled_at) {
      li.appendChild(el('span', 'handled-by', '已处理：坐席 ' + (item.handled_by || '') + '，' + time(item.handled_at)));
    }
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
    questions.forEach(function (item) {
      const li = el('li', 'unanswered-item');
      renderInboxItem(li, item);
      unansweredList.appendChild(li);
    });
    inboxStatus();
  }

  function inboxStatus() {
    const all = unansweredList.children.length;
    const open = unansweredList.querySelectorAll('li.unanswered-item:not(.handled)').length;
    unansweredStatus.textContent = all ? '未处理 ' + open + ' 条，共 ' + all + ' 条。' : '暂时没有待处理的问题。';
  }

  document.getElementById('refresh-unanswered').addEventListener('click', loadUnanswered);
  loadUnanswered();
  callerText.focus();
})();
