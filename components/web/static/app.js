// TikSpin web client: plain ES module, no framework, no build step. It speaks only the public API
// of ../shared/API.md, the way the Android app does (parameters in the query string, the token as
// the `token` parameter, feed paging with latest_time/next_time, chat polling with
// pre_msg_time). User text is only ever set with textContent (never innerHTML), and the page's
// CSP forbids inline script, so a title like <img src=x onerror=...> shows as text.

// ---- text in two languages, following the browser ------------------------------------------
const TEXT = {
  en: {
    feed: 'Feed', publish: 'Publish', friends: 'Friends', me: 'Me', login: 'Log in', register: 'Sign up',
    logout: 'Log out', username: 'Username', password: 'Password', account: 'Log in or sign up',
    like: 'Like', comments: 'Comments', follow: 'Follow', following: 'Following', followers: 'Followers',
    unfollow: 'Unfollow', tapUnmute: 'Tap to unmute', mute: 'Mute', unmute: 'Unmute',
    addComment: 'Add a comment…', send: 'Send', del: 'Delete', close: 'Close', noComments: 'No comments yet',
    file: 'Video file (MP4)', title: 'Title', upload: 'Publish', uploading: 'Uploading… {0}%',
    uploaded: 'Published. Your video is processing.', processing: 'Processing…', works: 'Works', likes: 'Liked',
    likesGot: 'Likes', empty: 'Nothing here yet', noFriends: 'No friends yet: friends are people you follow who follow you back.',
    message: 'Message…', you: 'You: ', offline: 'Offline: retrying…', back: 'Back', loginFirst: 'Log in first',
    sessionExpired: 'Your session expired; please log in again.', networkError: 'Network error, please retry.',
    uploadCut: 'The upload was interrupted (network error): nothing was published. Please retry.',
    chooseFile: 'Choose a video file', feedEmpty: 'No videos yet', loading: 'Loading…', play: 'Play',
    profileOf: 'Profile of {0}', skip: 'Skip to content', feedLabel: 'Video feed, use arrow keys to move',
  },
  zh: {
    feed: '首页', publish: '发布', friends: '朋友', me: '我', login: '登录', register: '注册',
    logout: '退出登录', username: '用户名', password: '密码', account: '登录或注册',
    like: '点赞', comments: '评论', follow: '关注', following: '关注', followers: '粉丝',
    unfollow: '取消关注', tapUnmute: '点击取消静音', mute: '静音', unmute: '取消静音',
    addComment: '说点什么…', send: '发送', del: '删除', close: '关闭', noComments: '还没有评论',
    file: '视频文件（MP4）', title: '标题', upload: '发布', uploading: '上传中… {0}%',
    uploaded: '发布成功，视频处理中。', processing: '处理中…', works: '作品', likes: '喜欢',
    likesGot: '获赞', empty: '这里还什么都没有', noFriends: '还没有朋友：互相关注的人会出现在这里。',
    message: '发消息…', you: '我：', offline: '网络已断开，正在重试…', back: '返回', loginFirst: '请先登录',
    sessionExpired: '登录已过期，请重新登录。', networkError: '网络错误，请重试。',
    uploadCut: '上传中断（网络错误）：没有发布任何内容，请重试。',
    chooseFile: '请选择视频文件', feedEmpty: '还没有视频', loading: '加载中…', play: '播放',
    profileOf: '{0} 的主页', skip: '跳到内容', feedLabel: '视频流，用方向键切换',
  },
};
const LANG = (navigator.languages || [navigator.language]).some((l) => /^zh\b/i.test(l || '')) ? 'zh' : 'en';
const t = (key, ...args) => (TEXT[LANG][key] || key).replace(/\{(\d)\}/g, (_, i) => String(args[i]));
document.documentElement.lang = LANG === 'zh' ? 'zh-CN' : 'en';

// ---- DOM: elements built with text, never with HTML -----------------------------------------
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k in el && typeof v !== 'string') el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}
// Icons as inline SVG built in the DOM: no emoji font needed, nothing fetched, CSP-clean.
const ICONS = {
  heart: 'M12 21s-7.5-4.6-10-9.3C.4 8.4 2.3 4.5 6 4.5c2.2 0 3.6 1.2 6 3.6 2.4-2.4 3.8-3.6 6-3.6 3.7 0 5.6 3.9 4 7.2C19.5 16.4 12 21 12 21z',
  bubble: 'M4 4h16a2 2 0 0 1 2 2v10a2 2 0 0 1-2 2H9l-5 4v-4a2 2 0 0 1-2-2V6a2 2 0 0 1 2-2z',
  muted: 'M3 9h4l5-4v14l-5-4H3zM16 9l5 6M21 9l-5 6',
  sound: 'M3 9h4l5-4v14l-5-4H3zM16 8.5a5 5 0 0 1 0 7M18.5 6a8.5 8.5 0 0 1 0 12',
};
function icon(name) {
  const ns = 'http://www.w3.org/2000/svg';
  const svg = document.createElementNS(ns, 'svg');
  svg.setAttribute('viewBox', '0 0 24 24');
  svg.setAttribute('aria-hidden', 'true');
  svg.setAttribute('class', `icon icon-${name}`);
  const path = document.createElementNS(ns, 'path');
  path.setAttribute('d', ICONS[name]);
  svg.append(path);
  return svg;
}
const $ = (sel) => document.querySelector(sel);
let toastTimer;
function toast(text) {
  const el = $('#toast');
  el.textContent = text;
  el.classList.add('show');
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => el.classList.remove('show'), 3500);
}

// ---- the API ----------------------------------------------------------------------------------
const INVALID_TOKEN = 1003;
class ApiError extends Error {}
class NetworkError extends Error {}
const session = {
  get token() { return localStorage.getItem('tikspin.token') || ''; },
  get userId() { return Number(localStorage.getItem('tikspin.user_id') || 0); },
  set(userId, token) { localStorage.setItem('tikspin.user_id', String(userId)); localStorage.setItem('tikspin.token', token); },
  clear() { localStorage.removeItem('tikspin.user_id'); localStorage.removeItem('tikspin.token'); },
};

// One request: parameters in the query string (as the app sends them, also on POST). A non-2xx
// answer or no answer is a network failure; a non-zero status_code is the API's own message.
async function api(method, path, params = {}, { auth = 'optional' } = {}) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null) q.set(k, String(v));
  if (auth !== 'none' && session.token) q.set('token', session.token);
  let res;
  try {
    res = await fetch(`${path}?${q}`, { method, cache: 'no-store' });
  } catch (e) {
    network.down();
    throw new NetworkError(t('networkError'));
  }
  if (!res.ok) { network.down(); throw new NetworkError(t('networkError')); }
  network.up();
  const body = await res.json();
  if (body.status_code !== 0) {
    // A token the server no longer accepts (a stale one): drop it, keep the page.
    // 1003 is the contract's invalid-token code (docs/api-decisions.md).
    if (body.status_code === INVALID_TOKEN && session.token) staleToken();
    throw new ApiError(body.status_msg || `status_code ${body.status_code}`);
  }
  return body;
}
const get = (path, params, opts) => api('GET', path, params, opts);
const post = (path, params, opts) => api('POST', path, params, { auth: 'required', ...opts });
function report(e) { toast(e.message); }

// Offline: a banner while requests fail, and a probe that brings the page back by itself.
const network = {
  isDown: false, probe: null,
  down() {
    if (this.isDown) return;
    this.isDown = true;
    const banner = $('#offline');
    banner.textContent = t('offline');
    banner.hidden = false;
    this.probe = setInterval(async () => {
      try {
        const r = await fetch('/', { method: 'HEAD', cache: 'no-store' });
        if (r.ok) { this.up(); route(); }
      } catch (_) { /* still down */ }
    }, 2000);
  },
  up() {
    if (!this.isDown) return;
    this.isDown = false;
    clearInterval(this.probe);
    $('#offline').hidden = true;
  },
};
addEventListener('offline', () => network.down());
addEventListener('online', () => { network.up(); route(); });

let me = null; // the logged-in user's profile, once loaded
function staleToken() {
  session.clear();
  me = null;
  renderNav();
  toast(t('sessionExpired'));
}
async function loadMe() {
  if (!session.token) { me = null; return null; }
  try {
    me = (await get('/douyin/user/', { user_id: session.userId }, { auth: 'required' })).user;
  } catch (_) {
    // An invalid token was dropped by api(); a network error keeps it for later.
  }
  return me;
}

// ---- navigation: #/ (feed), #/login, #/publish, #/friends, #/u/<id>, #/chat/<id> ------------
let cleanup = [];
function onLeave(fn) { cleanup.push(fn); }
function renderNav() {
  const nav = $('#nav');
  const here = location.hash || '#/';
  const link = (href, label, cls) => h('a', { href, class: cls, 'aria-current': here === href ? 'page' : null }, h('span', {}, label));
  nav.replaceChildren(
    link('#/', t('feed')),
    link('#/friends', t('friends')),
    link('#/publish', t('publish'), 'publish'),
    session.token ? link(`#/u/${session.userId}`, t('me')) : link('#/login', t('login')),
  );
}
async function route() {
  for (const fn of cleanup.splice(0)) fn();
  renderNav();
  const view = $('#view');
  const [, page = '', arg] = (location.hash || '#/').split('/');
  const needsLogin = ['publish', 'friends', 'chat', 'u'].includes(page);
  if (needsLogin && !session.token) { toast(t('loginFirst')); location.hash = '#/login'; return; }
  const screens = { '': feedView, login: loginView, publish: publishView, friends: friendsView, u: profileView, chat: chatView };
  const screen = screens[page] || feedView;
  view.replaceChildren(h('p', { class: 'empty' }, t('loading')));
  try {
    await screen(view, Number(arg) || 0);
  } catch (e) {
    view.replaceChildren(h('p', { class: 'empty error' }, e.message));
  }
  document.body.dataset.screen = page || 'feed';
}
addEventListener('hashchange', route);

// ---- shared pieces ------------------------------------------------------------------------------
function avatar(user) {
  return h('img', { class: 'avatar', src: user.avatar, alt: '', width: 48, height: 48, loading: 'lazy' });
}
function followButton(user, onChange) {
  if (user.id === session.userId) return null;
  const btn = h('button', { class: 'follow', type: 'button' });
  const paint = () => {
    btn.textContent = user.is_follow ? t('following') : t('follow');
    btn.setAttribute('aria-pressed', String(user.is_follow));
    btn.setAttribute('aria-label', `${user.is_follow ? t('unfollow') : t('follow')} ${user.name}`);
  };
  paint();
  btn.addEventListener('click', async (ev) => {
    ev.stopPropagation();
    if (!session.token) { location.hash = '#/login'; return; }
    btn.disabled = true;
    try {
      await post('/douyin/relation/action/', { to_user_id: user.id, action_type: user.is_follow ? 2 : 1 });
      user.is_follow = !user.is_follow;
      paint();
      if (onChange) onChange(user);
    } catch (e) { report(e); } finally { btn.disabled = false; }
  });
  return btn;
}
function userRow(user, extra) {
  return h('li', { class: 'row' },
    h('a', { href: `#/u/${user.id}`, 'aria-label': t('profileOf', user.name) }, avatar(user)),
    h('div', { class: 'body' },
      h('a', { href: `#/u/${user.id}`, class: 'who' }, user.name),
      extra || null),
    followButton(user));
}

// ---- the feed -------------------------------------------------------------------------------------
// Perf marks the browser tests read: when the first frame showed, and for each slide that became
// current whether its video was already buffered.
const perf = (window.__tikspin = { firstFrame: null, shown: [] });
let muted = true;

async function feedView(view) {
  const feed = h('div', { class: 'feed', role: 'feed', 'aria-label': t('feedLabel'), tabindex: 0 });
  view.replaceChildren(feed);
  const slides = [];
  let nextTime = 0;
  let loading = null;
  let current = -1;

  async function loadPage() {
    if (loading) return loading;
    loading = (async () => {
      let page = await get('/douyin/feed/', { latest_time: nextTime || undefined });
      nextTime = page.next_time;
      // The end of the feed: an empty page whose next_time is now. Loop back to the newest.
      if (page.video_list.length === 0 && slides.length > 0) {
        page = await get('/douyin/feed/', { latest_time: nextTime });
        nextTime = page.next_time;
      }
      for (const v of page.video_list) addSlide(v);
      if (slides.length === 0) feed.replaceChildren(h('p', { class: 'empty' }, t('feedEmpty')));
    })().finally(() => { loading = null; });
    return loading;
  }

  function addSlide(v) {
    const index = slides.length;
    const video = h('video', { playsinline: true, loop: true, muted: true, preload: 'none', poster: v.cover_url, 'aria-label': v.title });
    video.muted = muted;
    video.addEventListener('click', () => setMuted(!muted));
    const unmute = h('button', { class: 'unmute', type: 'button', onclick: () => setMuted(!muted) });
    const likeCount = h('span', { class: 'count' }, v.favorite_count);
    const like = h('button', { class: 'act like', type: 'button', 'aria-pressed': String(v.is_favorite), 'aria-label': t('like') },
      icon('heart'), likeCount);
    like.addEventListener('click', async () => {
      if (!session.token) { location.hash = '#/login'; return; }
      like.disabled = true;
      try {
        await post('/douyin/favorite/action/', { video_id: v.id, action_type: v.is_favorite ? 2 : 1 });
        v.is_favorite = !v.is_favorite;
        v.favorite_count += v.is_favorite ? 1 : -1;
        like.setAttribute('aria-pressed', String(v.is_favorite));
        likeCount.textContent = v.favorite_count;
      } catch (e) { report(e); } finally { like.disabled = false; }
    });
    const commentCount = h('span', { class: 'count' }, v.comment_count);
    const comments = h('button', { class: 'act comments', type: 'button', 'aria-label': t('comments') },
      icon('bubble'), commentCount);
    comments.addEventListener('click', () => openComments(v, (n) => { v.comment_count = n; commentCount.textContent = n; }));
    const slide = h('section', { class: 'slide', 'data-video-id': v.id, 'aria-label': v.title },
      video, unmute,
      h('div', { class: 'side' },
        h('a', { class: 'avatar-btn', href: `#/u/${v.author.id}`, 'aria-label': t('profileOf', v.author.name) }, avatar(v.author)),
        followButton(v.author, (u) => slides.forEach((s) => { if (s.v.author.id === u.id) s.v.author.is_follow = u.is_follow; })),
        like, comments),
      h('div', { class: 'meta' },
        h('a', { class: 'name', href: `#/u/${v.author.id}` }, `@${v.author.name}`),
        h('p', { class: 'title' }, v.title)));
    slides.push({ v, slide, video, unmute });
    paintUnmute(slides[index]);
    feed.append(slide);
    observer.observe(slide);
  }

  function paintUnmute(s) { s.unmute.replaceChildren(icon(muted ? 'muted' : 'sound'), muted ? t('tapUnmute') : t('mute')); }
  function setMuted(m) {
    muted = m;
    for (const s of slides) { s.video.muted = m; paintUnmute(s); }
    if (current >= 0) play(slides[current]);
  }
  function play(s) {
    s.video.play().catch(() => {
      // Autoplay with sound refused: fall back to muted, which browsers always allow.
      if (!s.video.muted) { setMuted(true); }
    });
  }
  function arm(s) {
    if (s && !s.video.src) { s.video.src = s.v.play_url; s.video.preload = 'auto'; }
  }
  function show(index) {
    if (index === current) return;
    current = index;
    slides.forEach((s, i) => { if (i !== index && !s.video.paused) s.video.pause(); });
    const s = slides[index];
    perf.shown.push({ index, id: s.v.id, readyState: s.video.src ? s.video.readyState : -1 });
    arm(s);
    play(s);
    if (perf.firstFrame === null) {
      const mark = () => { if (perf.firstFrame === null) perf.firstFrame = performance.now(); };
      // The first presented frame; 'playing' in case the browser has no frame callback.
      if (s.video.requestVideoFrameCallback) s.video.requestVideoFrameCallback(mark);
      s.video.addEventListener('playing', () => setTimeout(mark, 250), { once: true });
    }
    // The next video is loaded while this one plays, so it is ready when it comes into view.
    arm(slides[index + 1]);
    if (index >= slides.length - 2) loadPage().catch(report);
  }
  const observer = new IntersectionObserver((entries) => {
    for (const e of entries) {
      if (e.isIntersecting && e.intersectionRatio >= 0.6) show(slides.findIndex((s) => s.slide === e.target));
    }
  }, { root: feed, threshold: [0.6] });
  onLeave(() => { observer.disconnect(); slides.forEach((s) => s.video.pause()); });

  function go(delta) {
    const target = slides[Math.max(0, Math.min(slides.length - 1, current + delta))];
    if (target) target.slide.scrollIntoView({ behavior: 'instant', block: 'start' });
  }
  const keys = (ev) => {
    if (ev.target.closest && ev.target.closest('input, textarea, .drawer')) return;
    if (ev.key === 'ArrowDown' || ev.key === 'PageDown' || ev.key === 'j') { ev.preventDefault(); go(1); }
    else if (ev.key === 'ArrowUp' || ev.key === 'PageUp' || ev.key === 'k') { ev.preventDefault(); go(-1); }
    else if (ev.key === 'm') setMuted(!muted);
  };
  addEventListener('keydown', keys);
  onLeave(() => removeEventListener('keydown', keys));
  await loadPage();
  feed.focus({ preventScroll: true });
}

// The comment drawer: newest first (as comment/list answers), add, delete one's own.
function openComments(v, setCount) {
  const list = h('ol', { 'aria-live': 'polite' });
  const input = h('input', { name: 'comment', maxlength: 500, placeholder: t('addComment'), 'aria-label': t('addComment'), autocomplete: 'off' });
  const drawer = h('aside', { class: 'drawer', role: 'dialog', 'aria-modal': 'false', 'aria-label': t('comments') },
    h('header', {}, h('span', {}, t('comments')), h('button', { class: 'close', type: 'button', 'aria-label': t('close'), onclick: () => close() }, '×')),
    list,
    h('form', { class: 'compose', onsubmit: send }, input, h('button', { class: 'btn', type: 'submit' }, t('send'))));
  const esc = (ev) => { if (ev.key === 'Escape') close(); };
  function close() { drawer.remove(); removeEventListener('keydown', esc); }
  addEventListener('keydown', esc);
  onLeave(close);
  document.body.append(drawer);
  input.focus();
  let count = v.comment_count;
  function row(c) {
    const mine = c.user.id === session.userId || v.author.id === session.userId;
    const li = h('li', { class: 'row comment', 'data-comment-id': c.id },
      avatar(c.user),
      h('div', { class: 'body' }, h('a', { class: 'who', href: `#/u/${c.user.id}` }, `${c.user.name} · ${c.create_date}`), h('p', { class: 'text' }, c.content)),
      mine ? h('button', { class: 'del', type: 'button', 'aria-label': `${t('del')}: ${c.content}`, onclick: async () => {
        try {
          await post('/douyin/comment/action/', { video_id: v.id, action_type: 2, comment_id: c.id });
          li.remove();
          setCount(--count);
          if (!list.children.length) list.append(h('li', { class: 'empty' }, t('noComments')));
        } catch (e) { report(e); }
      } }, t('del')) : null);
    return li;
  }
  async function send(ev) {
    ev.preventDefault();
    if (!session.token) { close(); location.hash = '#/login'; return; }
    const text = input.value;
    try {
      const r = await post('/douyin/comment/action/', { video_id: v.id, action_type: 1, comment_text: text });
      input.value = '';
      list.querySelector('.empty')?.remove();
      list.prepend(row(r.comment));
      setCount(++count);
    } catch (e) { report(e); }
  }
  get('/douyin/comment/list/', { video_id: v.id }).then((r) => {
    list.replaceChildren(...r.comment_list.map(row));
    // The list is the truth (others may have commented meanwhile) unless it is a full page: the
    // API lists the newest 500.
    if (r.comment_list.length < 500) { count = r.comment_list.length; setCount(count); }
    if (!r.comment_list.length) list.append(h('li', { class: 'empty' }, t('noComments')));
  }, report);
}

// ---- accounts ---------------------------------------------------------------------------------
async function loginView(view) {
  const error = h('p', { class: 'error', role: 'alert' });
  const username = h('input', { name: 'username', autocomplete: 'username', required: true, maxlength: 32 });
  const password = h('input', { name: 'password', type: 'password', autocomplete: 'current-password', required: true, minlength: 6, maxlength: 32 });
  const submit = (path) => async (ev) => {
    ev.preventDefault();
    error.textContent = '';
    try {
      const r = await post(path, { username: username.value, password: password.value }, { auth: 'none' });
      session.set(r.user_id, r.token);
      await loadMe();
      location.hash = '#/';
    } catch (e) { error.textContent = e.message; }
  };
  const form = h('form', { class: 'card', onsubmit: submit('/douyin/user/login/') },
    h('label', {}, t('username'), username),
    h('label', {}, t('password'), password),
    error,
    h('div', { class: 'buttons' },
      h('button', { class: 'btn', type: 'submit', id: 'login' }, t('login')),
      h('button', { class: 'btn ghost', type: 'button', id: 'register', onclick: (ev) => { if (form.reportValidity()) submit('/douyin/user/register/')(ev); } }, t('register'))));
  view.replaceChildren(h('div', { class: 'page' }, h('h1', {}, t('account')), form));
  username.focus();
}

// ---- publish: a real progress bar (XHR upload events; fetch has none) -------------------------
const PENDING = 'tikspin.pending';
const pending = {
  all() { try { return JSON.parse(localStorage.getItem(PENDING) || '[]'); } catch (_) { return []; } },
  save(ids) { localStorage.setItem(PENDING, JSON.stringify(ids.slice(-20))); },
};
// The app's upload limit in MB (max_upload_mb, rendered into the page by the web component), read
// when a file is sent; null if the page has none.
function uploadLimitMb() {
  const v = document.querySelector('meta[name="tikspin-max-upload-mb"]')?.content || '';
  return /^\d+$/.test(v) ? Number(v) : null;
}
async function publishView(view) {
  const file = h('input', { name: 'data', type: 'file', accept: 'video/mp4,video/quicktime,.mp4,.mov', required: true });
  const title = h('input', { name: 'title', required: true, maxlength: 100 });
  const progress = h('progress', { max: 100, value: 0, hidden: true, 'aria-label': t('upload') });
  const status = h('p', { class: 'status', role: 'status' });
  const error = h('p', { class: 'error', role: 'alert' });
  const submit = h('button', { class: 'btn', type: 'submit' }, t('upload'));
  const form = h('form', { class: 'card', onsubmit: async (ev) => {
    ev.preventDefault();
    error.textContent = '';
    if (!file.files[0]) { error.textContent = t('chooseFile'); return; }
    // Over the app's limit: refused here, with the API's own words, before a byte is sent (the
    // server refuses such a request from its declared size without reading it, and the
    // connection then closes, so the browser would only see a network error).
    const limitMb = uploadLimitMb();
    if (limitMb !== null && file.files[0].size > limitMb * 1024 * 1024) {
      error.textContent = `the video is too large: the limit is ${Math.max(1, limitMb)} MB`;
      return;
    }
    // The works before, so the new one can be told apart and shown as processing.
    let before = [];
    try { before = (await get('/douyin/publish/list/', { user_id: session.userId })).video_list.map((v) => v.id); } catch (e) { error.textContent = e.message; return; }
    const body = new FormData();
    body.append('token', session.token);
    body.append('title', title.value);
    body.append('data', file.files[0]);
    submit.disabled = true;
    progress.hidden = false;
    progress.value = 0;
    const xhr = new XMLHttpRequest();
    xhr.upload.addEventListener('progress', (e) => {
      if (!e.lengthComputable) return;
      const pct = Math.round((e.loaded / e.total) * 100);
      progress.value = pct;
      status.textContent = t('uploading', pct);
    });
    const done = new Promise((resolve) => {
      xhr.addEventListener('load', () => resolve(xhr.status >= 200 && xhr.status < 300 ? xhr.responseText : null));
      xhr.addEventListener('error', () => resolve(null));
      xhr.addEventListener('abort', () => resolve(null));
    });
    xhr.open('POST', '/douyin/publish/action/');
    xhr.send(body);
    const text = await done;
    submit.disabled = false;
    let reply = null;
    try { reply = text && JSON.parse(text); } catch (_) { reply = null; }
    if (!reply) { error.textContent = t('uploadCut'); status.textContent = ''; progress.hidden = true; return; }
    if (reply.status_code !== 0) { error.textContent = reply.status_msg; status.textContent = ''; return; }
    progress.value = 100;
    status.textContent = `${t('uploading', 100)} ${t('uploaded')}`;
    try {
      const after = (await get('/douyin/publish/list/', { user_id: session.userId })).video_list.map((v) => v.id);
      pending.save([...pending.all(), ...after.filter((id) => !before.includes(id))]);
    } catch (_) { /* the works page lists it anyway */ }
    setTimeout(() => { location.hash = `#/u/${session.userId}`; }, 800);
  } },
  h('label', {}, t('file'), file),
  h('label', {}, t('title'), title),
  progress, status, error, submit);
  view.replaceChildren(h('div', { class: 'page' }, h('h1', {}, t('publish')), form));
}

// ---- profiles ------------------------------------------------------------------------------------
async function profileView(view, userId) {
  const user = (await get('/douyin/user/', { user_id: userId }, { auth: 'required' })).user;
  const own = user.id === session.userId;
  if (own) me = user;
  const body = h('div', { class: 'tab-body' });
  const tabs = [
    ['works', t('works'), () => videoGrid(body, '/douyin/publish/list/', user, own)],
    ['likes', t('likes'), () => videoGrid(body, '/douyin/favorite/list/', user, false)],
    ['following', t('following'), () => userList(body, '/douyin/relation/follow/list/', user)],
    ['followers', t('followers'), () => userList(body, '/douyin/relation/follower/list/', user)],
  ];
  const tabBar = h('div', { class: 'tabs', role: 'tablist' });
  const select = (name) => {
    for (const b of tabBar.children) b.setAttribute('aria-selected', String(b.dataset.tab === name));
    tabs.find((x) => x[0] === name)[2]().catch((e) => body.replaceChildren(h('p', { class: 'error' }, e.message)));
  };
  for (const [name, label] of tabs) tabBar.append(h('button', { type: 'button', role: 'tab', 'data-tab': name, onclick: () => select(name) }, label));
  const stat = (n, label, key) => h('li', { 'data-count': key }, h('b', {}, n), label);
  view.replaceChildren(h('div', { class: 'page profile' },
    h('div', { class: 'profile-head' }, avatar(user),
      h('div', {}, h('h1', {}, user.name), followButton(user, (u) => {
        user.follower_count += u.is_follow ? 1 : -1;
        view.querySelector('[data-count=follower_count] b').textContent = user.follower_count;
      }),
        own ? h('button', { class: 'btn ghost', type: 'button', id: 'logout', onclick: () => { session.clear(); me = null; location.hash = '#/'; } }, t('logout')) : null)),
    h('ul', { class: 'counts' },
      stat(user.follow_count, t('following'), 'follow_count'), stat(user.follower_count, t('followers'), 'follower_count'),
      stat(user.total_favorited, t('likesGot'), 'total_favorited'), stat(user.work_count, t('works'), 'work_count'),
      stat(user.favorite_count, t('likes'), 'favorite_count')),
    tabBar, body));
  select('works');
}

// A video grid. On one's own works, a video published from this browser is shown as processing
// until it is in the feed (which lists only videos whose cover is ready); its cover is not
// loaded before then, since the placeholder would stay in the page's image cache under the
// cover's stable URL.
async function videoGrid(body, path, user, own) {
  const list = (await get(path, { user_id: user.id })).video_list;
  if (!list.length) { body.replaceChildren(h('p', { class: 'empty' }, t('empty'))); return; }
  const waiting = own ? new Set(pending.all()) : new Set();
  const tiles = list.map((v) => {
    const tile = h('button', { class: 'tile', type: 'button', 'data-video-id': v.id, 'aria-label': `${t('play')}: ${v.title}`, onclick: () => openPlayer(v) });
    const paint = () => {
      tile.replaceChildren(
        waiting.has(v.id) ? h('span', { class: 'processing' }, t('processing')) : h('img', { src: v.cover_url, alt: '', loading: 'lazy' }),
        h('span', { class: 'cap' }, v.title));
      tile.classList.toggle('is-processing', waiting.has(v.id));
    };
    paint();
    return { v, tile, paint };
  });
  body.replaceChildren(h('ul', { class: 'grid' }, tiles.map((x) => h('li', {}, x.tile))));
  if (!tiles.some((x) => waiting.has(x.v.id))) return;
  const poll = setInterval(async () => {
    try {
      const ready = new Set((await get('/douyin/feed/', {})).video_list.map((v) => v.id));
      for (const x of tiles) if (waiting.has(x.v.id) && ready.has(x.v.id)) { waiting.delete(x.v.id); x.paint(); }
      pending.save(pending.all().filter((id) => !ready.has(id)));
      if (![...waiting].length) clearInterval(poll);
    } catch (_) { /* shown by the banner; next tick retries */ }
  }, 1500);
  onLeave(() => clearInterval(poll));
}
function openPlayer(v) {
  const video = h('video', { src: v.play_url, controls: true, autoplay: true, playsinline: true, 'aria-label': v.title });
  const close = () => { video.pause(); box.remove(); removeEventListener('keydown', esc); };
  const esc = (ev) => { if (ev.key === 'Escape') close(); };
  const box = h('div', { class: 'player', role: 'dialog', 'aria-label': v.title }, video,
    h('button', { class: 'close', type: 'button', 'aria-label': t('close'), onclick: close }, '×'));
  addEventListener('keydown', esc);
  onLeave(close);
  document.body.append(box);
}
async function userList(body, path, user) {
  const list = (await get(path, { user_id: user.id })).user_list;
  body.replaceChildren(list.length ? h('ul', { class: 'users' }, list.map((u) => userRow(u))) : h('p', { class: 'empty' }, t('empty')));
}

// ---- friends and chat -------------------------------------------------------------------------------
async function friendsView(view) {
  const list = (await get('/douyin/relation/friend/list/', { user_id: session.userId }, { auth: 'required' })).user_list;
  const rows = list.map((f) => h('li', { class: 'row friend', 'data-user-id': f.id },
    h('a', { href: `#/chat/${f.id}`, 'aria-label': f.name }, avatar(f)),
    h('a', { class: 'body', href: `#/chat/${f.id}` },
      h('span', { class: 'who' }, f.name),
      h('p', { class: 'preview' }, f.message ? (f.msgType === 1 ? t('you') : '') + f.message : ''))));
  view.replaceChildren(h('div', { class: 'page' }, h('h1', {}, t('friends')),
    rows.length ? h('ul', { class: 'users' }, rows) : h('p', { class: 'empty' }, t('noFriends'))));
}

// The chat polls every second like the app: pre_msg_time = 0 once (the whole conversation), then
// the newest create_time the server has sent, which returns only the peer's newer messages. One's
// own messages are drawn when sent. Ids already shown are skipped, so nothing shows twice.
async function chatView(view, peerId) {
  const peer = (await get('/douyin/user/', { user_id: peerId }, { auth: 'required' })).user;
  const list = h('ol', { 'aria-live': 'polite', 'aria-label': peer.name });
  const input = h('input', { name: 'message', maxlength: 1000, placeholder: t('message'), 'aria-label': t('message'), autocomplete: 'off' });
  const seen = new Set();
  let preMsgTime = 0;
  const draw = (m, mine) => {
    list.append(h('li', { class: mine ? 'msg mine' : 'msg', 'data-message-id': m.id || null }, m.content));
    list.scrollTop = list.scrollHeight;
  };
  view.replaceChildren(h('div', { class: 'chat' },
    h('header', {}, h('a', { href: '#/friends', 'aria-label': t('back') }, '‹'), avatar(peer), h('span', {}, peer.name)),
    list,
    h('form', { class: 'compose', onsubmit: async (ev) => {
      ev.preventDefault();
      const content = input.value;
      try {
        await post('/douyin/message/action/', { to_user_id: peerId, action_type: 1, content });
        input.value = '';
        draw({ content }, true);
      } catch (e) { report(e); }
    } }, input, h('button', { class: 'btn', type: 'submit' }, t('send')))));
  let busy = false;
  let loaded = false;
  async function poll() {
    if (busy) return;
    busy = true;
    try {
      const r = await get('/douyin/message/chat/', { to_user_id: peerId, pre_msg_time: preMsgTime }, { auth: 'required' });
      for (const m of r.message_list) {
        preMsgTime = Math.max(preMsgTime, m.create_time);
        // After the first load, one's own messages are on screen already (drawn when sent); a
        // poll still at pre_msg_time = 0 (an empty conversation so far) returns them too.
        if (seen.has(m.id) || (loaded && m.from_user_id === session.userId)) continue;
        seen.add(m.id);
        draw(m, m.from_user_id === session.userId);
      }
      loaded = true;
    } catch (_) { /* network: the banner shows it; the next tick retries */ } finally { busy = false; }
  }
  await poll();
  const timer = setInterval(poll, 1000);
  onLeave(() => clearInterval(timer));
  input.focus();
}

// ---- start ------------------------------------------------------------------------------------------
$('#skip').textContent = t('skip');
loadMe().finally(route);
