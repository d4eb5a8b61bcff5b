'use strict';

// The REST step's output ({statusCode, HTTPHeaders, responseBody}) becomes the HTTP answer
// of a request-reply flow, and the record alone goes on as data.
exports.process = async function process(msg) {
    const answer = msg.body || {};
    const record = answer.responseBody;
    await this.emit('httpReply', {
        statusCode: answer.statusCode === 200 ? 200 : 502,
        headers: { 'Content-Type': 'application/json', 'X-Replied-By': 'node-step' },
        body: { record, upstreamStatus: answer.statusCode },
    });
    return { body: { record }, headers: {} };
};
