'use strict';

// The SaaS API of the API-bound benchmarks: every GET /items/<seq> answers after DELAY_MS,
// if its bearer token is current, and POST /token refreshes an OAuth2 grant the way
// providers do (the refresh token rotates; an old one is refused as invalid_grant). Written
// for Node's event loop so that the API costs the 2 cores little next to the workers under
// test. Prints {"port", "access_token", "refresh_token"} on its first line of output.
//
//   DELAY_MS=20 TOKEN_TTL_S=0 node api.js      (TOKEN_TTL_S=0: the token never expires)

const http = require('http');
const crypto = require('crypto');

const delayMs = Number(process.env.DELAY_MS || 20);
const ttlSeconds = Number(process.env.TOKEN_TTL_S || 0);
const clientId = process.env.CLIENT_ID || 'bench-client';
const clientSecret = process.env.CLIENT_SECRET || 'bench-secret';

const stats = {
    requests: 0, answered: 0, probes: 0, unauthorized: 0, tokenCalls: 0, invalidGrants: 0,
    inFlight: 0, maxInFlight: 0, expiries: 0, tokenCallTimes: [],
};
let grant = mint();
let previousAccess = null;

function mint() {
    return {
        access: crypto.randomBytes(16).toString('hex'),
        refresh: crypto.randomBytes(16).toString('hex'),
        expiresAt: ttlSeconds > 0 ? Date.now() + ttlSeconds * 1000 : Infinity,
        expiryCounted: false,
    };
}

function reply(res, status, body) {
    const text = JSON.stringify(body);
    res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(text) });
    res.end(text);
}

function authorised(req) {
    const header = req.headers.authorization || '';
    const token = header.startsWith('Bearer ') ? header.slice(7) : '';
    if (token !== grant.access) {
        return false;
    }
    if (Date.now() >= grant.expiresAt) {
        if (!grant.expiryCounted) {
            grant.expiryCounted = true;
            stats.expiries += 1;
        }
        return false;
    }
    return true;
}

function items(req, res, seq) {
    stats.requests += 1;
    if (!authorised(req)) {
        stats.unauthorized += 1;
        reply(res, 401, { error: 'invalid_token' });
        return;
    }
    stats.inFlight += 1;
    stats.maxInFlight = Math.max(stats.maxInFlight, stats.inFlight);
    setTimeout(() => {
        stats.inFlight -= 1;
        if (seq >= 0) {
            stats.answered += 1;
        } else {
            stats.probes += 1; // the bench timing the API before the workers start
        }
        reply(res, 200, { seq, item: `item-${seq}` });
    }, delayMs);
}

function token(req, res, text) {
    stats.tokenCalls += 1;
    stats.tokenCallTimes.push(Date.now() / 1000);
    const form = new URLSearchParams(text);
    let id = form.get('client_id');
    let secret = form.get('client_secret');
    const basic = req.headers.authorization || '';
    if (basic.startsWith('Basic ')) {
        [id, secret] = Buffer.from(basic.slice(6), 'base64').toString().split(':');
    }
    if (id !== clientId || secret !== clientSecret) {
        reply(res, 401, { error: 'invalid_client' });
        return;
    }
    if (form.get('grant_type') !== 'refresh_token' || form.get('refresh_token') !== grant.refresh) {
        stats.invalidGrants += 1;
        reply(res, 400, { error: 'invalid_grant' });
        return;
    }
    previousAccess = grant.access;
    grant = mint();
    const body = { access_token: grant.access, refresh_token: grant.refresh, token_type: 'Bearer' };
    if (ttlSeconds > 0) {
        body.expires_in = ttlSeconds;
    }
    reply(res, 200, body);
}

const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (chunk) => chunks.push(chunk));
    req.on('end', () => {
        const match = /^\/items\/(-?\d+)/.exec(req.url);
        if (req.method === 'GET' && match) {
            items(req, res, Number(match[1]));
        } else if (req.method === 'POST' && req.url === '/token') {
            token(req, res, Buffer.concat(chunks).toString());
        } else if (req.method === 'GET' && req.url === '/stats') {
            reply(res, 200, { ...stats, previousAccessKnown: previousAccess !== null });
        } else {
            reply(res, 404, { error: 'not found' });
        }
    });
});
server.keepAliveTimeout = 60000;
server.listen(0, '127.0.0.1', () => {
    const first = grant;
    process.stdout.write(`${JSON.stringify({
        port: server.address().port, access_token: first.access, refresh_token: first.refresh,
        expires_in: ttlSeconds > 0 ? ttlSeconds : null,
    })}\n`);
});
process.on('SIGTERM', () => process.exit(0));
